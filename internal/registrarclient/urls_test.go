package registrarclient

import (
	"errors"
	"slices"
	"strings"
	"testing"
)

func TestParseURLs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
		err  string // a substring of the error; "" for none
	}{
		{in: "http://127.0.0.1:9898", want: []string{"http://127.0.0.1:9898"}},
		{in: "https://r1:9898/", want: []string{"https://r1:9898"}},
		{in: "https://r1:9898/prefix/", want: []string{"https://r1:9898/prefix"}},
		{in: "https://r1:9898,https://r2:9898,https://r3:9898", want: []string{"https://r1:9898", "https://r2:9898", "https://r3:9898"}},
		{in: " https://r1:9898 , https://r2:9898/ ", want: []string{"https://r1:9898", "https://r2:9898"}},
		{in: "", err: "the list is empty"},
		{in: "  ", err: "the list is empty"},
		{in: ",", err: `empty entry (entry 1 of ",")`},
		{in: "http://a:1,,", err: `empty entry (entry 2 of "http://a:1,,")`},
		{in: "http://a:1,", err: `empty entry (entry 2 of "http://a:1,")`},
		{in: ",http://a:1", err: "empty entry (entry 1 of"},
		{in: "ftp://x", err: `"ftp://x": must be http(s)://host:port`},
		{in: "http://a:1,ftp://x", err: `"ftp://x": must be http(s)://host:port (entry 2 of "http://a:1,ftp://x")`},
		{in: "https://r1:9898,r2:9898", err: `"r2:9898": must be http(s)://host:port (entry 2`},
		{in: "http://", err: "must be http(s)://host:port"},
		{in: "127.0.0.1:9898", err: "must be http(s)://host:port"},
		{in: "http://a:1?x=1", err: "must be http(s)://host:port"},
		{in: "http://a:1#frag", err: "must be http(s)://host:port"},
		{in: "http://a:1, http://a b:2", err: `"http://a b:2": must be`},
		{in: "https://r1:9898,https://R1:9898/", err: `listed twice (entries 1 and 2`},
	} {
		got, err := parseURLs(tc.in)
		if tc.err != "" {
			if err == nil || !errors.Is(err, ErrBadURL) || !strings.Contains(err.Error(), tc.err) {
				t.Errorf("parseURLs(%q) = %v, want an ErrBadURL containing %q", tc.in, err, tc.err)
			}
			continue
		}
		if err != nil {
			t.Errorf("parseURLs(%q): %v", tc.in, err)
			continue
		}
		var s []string
		for _, u := range got {
			s = append(s, u.String())
		}
		if !slices.Equal(s, tc.want) {
			t.Errorf("parseURLs(%q) = %q, want %q", tc.in, s, tc.want)
		}
	}
}

func TestNewChecksEveryURL(t *testing.T) {
	c, err := New(Config{})
	if err != nil || c.URL() != DefaultURL || !slices.Equal(c.URLs(), []string{DefaultURL}) {
		t.Fatalf("zero Config: %v, %q %q", err, c.URL(), c.URLs())
	}
	for _, tc := range []struct {
		cfg Config
		err string
	}{
		{Config{URL: "https://r1:9898,https://r2:9898", Credential: "acme.s"}, ""},
		{Config{URL: "http://127.0.0.1:1,http://localhost:2,http://[::1]:3", Credential: "acme.s"}, ""},
		{Config{URL: "https://r1:9898,http://r2:9898", Credential: "acme.s"}, "refusing to send a credential over plain http to r2:9898"},
		{Config{URL: "http://127.0.0.1:1,http://r2:9898", Credential: "acme.s"}, "refusing to send a credential over plain http to r2:9898"},
		{Config{URL: "https://r1:9898,http://r2:9898", Credential: "acme.s", AllowInsecure: true}, ""},
		{Config{URL: "https://r1:9898,http://r2:9898"}, ""}, // no credential to protect
		{Config{URL: "https://r1:9898,,https://r2:9898"}, "empty entry"},
		{Config{URL: "https://r1:9898,ftp://x"}, `"ftp://x": must be http(s)://host:port`},
	} {
		c, err := New(tc.cfg)
		if tc.err == "" {
			if err != nil {
				t.Errorf("New(%q): %v", tc.cfg.URL, err)
			} else if got := strings.Join(c.URLs(), ","); c.URL() != c.URLs()[0] || got == "" {
				t.Errorf("New(%q): URL %q URLs %q", tc.cfg.URL, c.URL(), got)
			}
			continue
		}
		if err == nil || !strings.Contains(err.Error(), tc.err) {
			t.Errorf("New(%q) = %v, want an error containing %q", tc.cfg.URL, err, tc.err)
		}
	}
	// URLs hands out a copy.
	c, _ = New(Config{URL: "https://r1:9898,https://r2:9898"})
	c.URLs()[0] = "x"
	if c.URLs()[0] != "https://r1:9898" {
		t.Fatal("URLs exposes the client's slice")
	}
}

// FuzzParseURLs: any input either fails with ErrBadURL or gives a list of
// distinct http(s) URLs with a host, which parses again to itself.
func FuzzParseURLs(f *testing.F) {
	for _, s := range []string{
		"http://127.0.0.1:9898", "https://r1:9898,https://r2:9898,https://r3:9898", "", ",", "http://a:1,,",
		"ftp://x", "http://a:1,ftp://x", " https://r1:9898/ , https://R1:9898", "http://[::1]:9898/p%2Cq",
		"http://a:1?x", "http://user:pw@a:1/x/", "http://%41:1", "http://a:1/%zz",
		"http://0/#", "http://0/ %2C", // found by fuzzing: an empty fragment; a path printed with a comma
	} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, in string) {
		urls, err := parseURLs(in)
		if err != nil {
			if !errors.Is(err, ErrBadURL) {
				t.Fatalf("parseURLs(%q): error %v does not wrap ErrBadURL", in, err)
			}
			return
		}
		if len(urls) == 0 {
			t.Fatalf("parseURLs(%q): no URL and no error", in)
		}
		s := make([]string, len(urls))
		for i, u := range urls {
			if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" || u.RawQuery != "" || u.Fragment != "" {
				t.Fatalf("parseURLs(%q) accepted %q", in, u)
			}
			s[i] = u.String()
			if strings.HasSuffix(s[i], "/") {
				t.Fatalf("parseURLs(%q) kept a trailing slash: %q", in, s[i])
			}
		}
		again, err := parseURLs(strings.Join(s, ","))
		if err != nil {
			t.Fatalf("parseURLs(%q) = %q, which does not parse again: %v", in, s, err)
		}
		for i, u := range again {
			if u.String() != s[i] {
				t.Fatalf("parseURLs(%q) = %q; again %q", in, s, u)
			}
		}
	})
}
