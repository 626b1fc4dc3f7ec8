package main

import (
	"slices"
	"testing"
)

// TestSplitURLs: -url takes one base URL or several, comma-separated, and
// refuses an empty entry or one that is not an http(s) URL with a host.
func TestSplitURLs(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []string
	}{
		{"http://127.0.0.1:8080", []string{"http://127.0.0.1:8080"}},
		{"http://127.0.0.1:8080/", []string{"http://127.0.0.1:8080"}},
		{"http://127.0.0.1:8081, http://127.0.0.1:8082/,https://h:8083",
			[]string{"http://127.0.0.1:8081", "http://127.0.0.1:8082", "https://h:8083"}},
	} {
		got, err := splitURLs(tc.in)
		if err != nil || !slices.Equal(got, tc.want) {
			t.Errorf("splitURLs(%q) = %q, %v; want %q", tc.in, got, err, tc.want)
		}
	}
	for _, bad := range []string{"", "http://a:1,", "http://a:1,,http://b:2", "127.0.0.1:8080", "ftp://a", "http://"} {
		if got, err := splitURLs(bad); err == nil {
			t.Errorf("splitURLs(%q) = %q, want an error", bad, got)
		}
	}
}
