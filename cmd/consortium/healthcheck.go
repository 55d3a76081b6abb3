package main

import (
	"context"
	"fmt"
	"net/http"
	"time"
)

// runHealthcheck is the HEALTHCHECK of images built FROM scratch, where no
// curl exists: it GETs a health URL and fails unless it answers 200.
func runHealthcheck(ctx context.Context, e *env, args []string) error {
	fs := newFlags(e, "healthcheck")
	timeout := fs.Duration("timeout", 3*time.Second, "how long to wait for the answer")
	if err := parse(fs, args); err != nil {
		return err
	}
	url := "http://127.0.0.1:9898/healthz"
	if fs.NArg() > 1 {
		return fmt.Errorf("%w: consortium healthcheck [URL]", errUsage)
	}
	if fs.NArg() == 1 {
		url = fs.Arg(0)
	}
	ctx, cancel := context.WithTimeout(ctx, *timeout)
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
