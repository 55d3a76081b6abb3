// Package e2e drives the reference consortia of deploy/compose (the BFT
// one: four members, what make e2e runs; the legacy Clique one: three
// members, with E2E_CLIQUE=1), each member on its own Docker network, with an "internet"
// network that only the public nodes and the registrar join, and shows,
// with measured times, that they peer as intended and recover from the
// failures a consortium meets. The tests are behind the build tag e2e:
//
//	go test -tags e2e -v -timeout 30m ./test/e2e/
//
// They need docker, docker-compose, jq and openssl, and build the images
// with deploy/build-images.sh (the first run builds a static geth, a few
// minutes). See docs/deploy.md for the scenarios and the figures.
package e2e
