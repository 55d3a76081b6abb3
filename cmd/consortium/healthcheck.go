package main

import (
	"context"
	"fmt"
	"net/http"
	"time"

	"github.com/consortium/consortium/internal/cliflags"
	"github.com/urfave/cli/v3"
)

// healthcheckCommand is the HEALTHCHECK of images built FROM scratch,
// where no curl exists: it GETs a health URL and fails unless it answers
// 200.
func healthcheckCommand(e *env) *cli.Command {
	return &cli.Command{
		Name:      "healthcheck",
		Usage:     "exit 0 when a health URL answers 200 (for container HEALTHCHECKs)",
		ArgsUsage: "[URL]   (default http://127.0.0.1:9898/healthz)",
		Flags:     []cli.Flag{cliflags.Duration("timeout", 3*time.Second, "how long to wait for the answer")},
		Action:    func(ctx context.Context, cmd *cli.Command) error { return runHealthcheck(ctx, cmd) },
	}
}

func runHealthcheck(ctx context.Context, cmd *cli.Command) error {
	url := "http://127.0.0.1:9898/healthz"
	if cmd.NArg() > 1 {
		return fmt.Errorf("%w: consortium healthcheck [URL]", errUsage)
	}
	if cmd.NArg() == 1 {
		url = cmd.Args().First()
	}
	ctx, cancel := context.WithTimeout(ctx, cmd.Duration("timeout"))
	defer cancel()
	req, err := http.NewRequestWithContext(ctx, "GET", url, nil)
	if err != nil {
		return fmt.Errorf("%w: %v", errUsage, err)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return fmt.Errorf("unhealthy: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		return fmt.Errorf("unhealthy: %s answered %d", url, resp.StatusCode)
	}
	return nil
}
