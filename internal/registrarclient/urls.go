package registrarclient

import (
	"fmt"
	"net/url"
	"strings"
)

// parseURLs splits a comma-separated list of registrar base URLs (replicas
// of one registrar) and checks each: http or https, a host, no query or
// fragment, no trailing slash kept, none listed twice. A list of one is the
// single URL that Config.URL always held.
func parseURLs(list string) ([]*url.URL, error) {
	if strings.TrimSpace(list) == "" {
		return nil, fmt.Errorf("%w: the list is empty", ErrBadURL)
	}
	parts := strings.Split(list, ",")
	urls := make([]*url.URL, 0, len(parts))
	seen := make(map[string]int, len(parts))
	for i, p := range parts {
		where := ""
		if len(parts) > 1 {
			where = fmt.Sprintf(" (entry %d of %q)", i+1, list)
		}
		s := strings.TrimSpace(p)
		if s == "" {
			return nil, fmt.Errorf("%w: empty entry%s", ErrBadURL, where)
		}
		u, err := parseURL(s)
		if err != nil {
			return nil, fmt.Errorf("%w%s", err, where)
		}
		key := u.Scheme + "://" + strings.ToLower(u.Host) + u.EscapedPath()
		if j, dup := seen[key]; dup {
			return nil, fmt.Errorf("%w %q: listed twice (entries %d and %d of %q)", ErrBadURL, s, j+1, i+1, list)
		}
		seen[key] = i
		urls = append(urls, u)
	}
	return urls, nil
}

func parseURL(s string) (*url.URL, error) {
	u, err := url.Parse(strings.TrimRight(s, "/"))
	// An empty fragment ("http://r1/#") leaves no trace in u but the "#".
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" ||
		u.RawQuery != "" || u.ForceQuery || u.Fragment != "" || strings.Contains(s, "#") {
		return nil, fmt.Errorf("%w %q: must be http(s)://host:port", ErrBadURL, s)
	}
	// Printed, the URL must stay one entry of a list ("/ %2C" prints as "/%20,").
	if strings.Contains(u.String(), ",") {
		return nil, fmt.Errorf("%w %q: a comma in the URL (escape it as %%2C)", ErrBadURL, s)
	}
	return u, nil
}

func isLoopback(host string) bool {
	return host == "localhost" || strings.HasPrefix(host, "127.") || host == "::1"
}
