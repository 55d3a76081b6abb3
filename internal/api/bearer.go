package api

import (
	"net/http"
	"strings"
)

// Bearer is the credential of an "Authorization: Bearer <credential>"
// header, the only place the registrar and its dashboard read one from
// (never a query parameter or a cookie, which end up in logs and
// histories). ok is false without such a header.
func Bearer(h http.Header) (cred string, ok bool) {
	cred, ok = strings.CutPrefix(h.Get("Authorization"), "Bearer ")
	if !ok {
		return "", false
	}
	return cred, true
}
