package httpapi_test

import (
	"bytes"
	"net/http"
	"net/http/httptest"
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"

	"github.com/goccy/go-yaml"

	"seckill/activity/httpapi"
)

// openAPIMethods are the keys of an OpenAPI path item that are operations.
var openAPIMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}

// loadOpenAPI parses the document the server embeds.
func loadOpenAPI(t *testing.T) map[string]any {
	t.Helper()
	b, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	var doc map[string]any
	if err := yaml.Unmarshal(b, &doc); err != nil {
		t.Fatalf("openapi.yaml: %v", err)
	}
	if v, _ := doc["openapi"].(string); !strings.HasPrefix(v, "3.") {
		t.Fatalf("openapi.yaml: openapi is %q, want 3.x", v)
	}
	return doc
}

// operations returns the document's operations by "METHOD /path".
func operations(t *testing.T, doc map[string]any) map[string]map[string]any {
	t.Helper()
	paths, ok := doc["paths"].(map[string]any)
	if !ok {
		t.Fatal("openapi.yaml: no paths")
	}
	ops := map[string]map[string]any{}
	for path, item := range paths {
		for key, op := range item.(map[string]any) {
			if slices.Contains(openAPIMethods, key) {
				ops[strings.ToUpper(key)+" "+path] = op.(map[string]any)
			}
		}
	}
	return ops
}

var ginParam = regexp.MustCompile(`[:*]([A-Za-z0-9_]+)`)

// TestOpenAPIMatchesRoutes fails when the server registers a route the
// document does not describe, or the document describes one the server does
// not register.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	documented := operations(t, loadOpenAPI(t))
	registered := map[string]bool{}
	for _, r := range httpapi.New(nil, httpapi.Config{}).Routes() {
		registered[r.Method+" "+ginParam.ReplaceAllString(r.Path, "{$1}")] = true
	}
	if len(registered) == 0 {
		t.Fatal("the server registers no routes")
	}
	for route := range registered {
		if documented[route] == nil {
			t.Errorf("route %s is served but not in openapi.yaml", route)
		}
	}
	for route := range documented {
		if !registered[route] {
			t.Errorf("openapi.yaml describes %s, which the server does not serve", route)
		}
	}
}

// TestOpenAPIOperations checks what the route match cannot: admin
// operations declare the bearer token and its 401, the others none, every
// operation has a 2xx answer, and every path parameter is declared.
func TestOpenAPIOperations(t *testing.T) {
	doc := loadOpenAPI(t)
	paths := doc["paths"].(map[string]any)
	for route, op := range operations(t, doc) {
		method, path, _ := strings.Cut(route, " ")
		responses, _ := op["responses"].(map[string]any)
		ok := false
		for code := range responses {
			ok = ok || strings.HasPrefix(code, "2")
		}
		if !ok {
			t.Errorf("%s: no 2xx response", route)
		}
		_, has401 := responses["401"]
		_, secured := op["security"]
		// The admin operations, and the join (whose user may be verified).
		want := strings.HasPrefix(path, "/api/v1/admin/") || route == "POST /api/v1/activities/{id}/join"
		if want != secured || want != has401 {
			t.Errorf("%s: security declared %v, 401 declared %v; want both %v", route, secured, has401, want)
		}

		declared := map[string]bool{}
		item := paths[path].(map[string]any)
		for _, list := range []any{item["parameters"], op["parameters"]} {
			params, _ := list.([]any)
			for _, p := range params {
				p := resolve(t, doc, p).(map[string]any)
				if p["in"] == "path" {
					declared[p["name"].(string)] = true
				}
			}
		}
		for _, m := range regexp.MustCompile(`\{([^}]+)\}`).FindAllStringSubmatch(path, -1) {
			if !declared[m[1]] {
				t.Errorf("%s %s: path parameter %q is not declared", method, path, m[1])
			}
		}
	}
}

// TestOpenAPIReferencesResolve checks that every $ref points at a component
// of the document.
func TestOpenAPIReferencesResolve(t *testing.T) {
	doc := loadOpenAPI(t)
	var walk func(where string, v any)
	walk = func(where string, v any) {
		switch v := v.(type) {
		case map[string]any:
			if ref, ok := v["$ref"].(string); ok && lookup(doc, ref) == nil {
				t.Errorf("%s: $ref %q does not resolve", where, ref)
			}
			for k, e := range v {
				walk(where+"/"+k, e)
			}
		case []any:
			for _, e := range v {
				walk(where, e)
			}
		}
	}
	walk("", doc)
}

// lookup returns what a local $ref such as "#/components/schemas/Token"
// points at, or nil.
func lookup(doc map[string]any, ref string) any {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil
	}
	var v any = doc
	for _, key := range strings.Split(rest, "/") {
		m, ok := v.(map[string]any)
		if !ok {
			return nil
		}
		v = m[key]
	}
	return v
}

// resolve follows v's $ref, if it has one.
func resolve(t *testing.T, doc map[string]any, v any) any {
	t.Helper()
	if m, ok := v.(map[string]any); ok {
		if ref, ok := m["$ref"].(string); ok {
			target := lookup(doc, ref)
			if target == nil {
				t.Fatalf("$ref %q does not resolve", ref)
			}
			return target
		}
	}
	return v
}

func TestOpenAPIServed(t *testing.T) {
	want, err := os.ReadFile("openapi.yaml")
	if err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	httpapi.New(nil, httpapi.Config{}).ServeHTTP(rec, httptest.NewRequest(http.MethodGet, "/openapi.yaml", nil))
	if rec.Code != http.StatusOK {
		t.Fatalf("GET /openapi.yaml: status %d, want 200; body %s", rec.Code, rec.Body)
	}
	if ct := rec.Header().Get("Content-Type"); !strings.HasPrefix(ct, "application/yaml") {
		t.Errorf("Content-Type %q, want application/yaml", ct)
	}
	if !bytes.Equal(rec.Body.Bytes(), want) {
		t.Errorf("GET /openapi.yaml answered %d bytes that are not openapi.yaml (%d bytes)", rec.Body.Len(), len(want))
	}
}

// TestOpenAPIUserSecurity: the join declares the three ways a user may be
// known (none, the gateway's header, a JWT), and the schemes say what the
// server checks.
func TestOpenAPIUserSecurity(t *testing.T) {
	doc := loadOpenAPI(t)
	join := operations(t, doc)["POST /api/v1/activities/{id}/join"]
	var got []string
	for _, req := range join["security"].([]any) {
		names := []string{}
		for name := range req.(map[string]any) {
			names = append(names, name)
		}
		got = append(got, strings.Join(names, "+"))
	}
	if !slices.Equal(got, []string{"", "userHeader", "userJWT"}) {
		t.Errorf("join security %q, want none (body mode), userHeader, userJWT", got)
	}
	schemes := doc["components"].(map[string]any)["securitySchemes"].(map[string]any)
	jwt, _ := schemes["userJWT"].(map[string]any)
	if jwt["type"] != "http" || jwt["scheme"] != "bearer" || jwt["bearerFormat"] != "JWT" {
		t.Errorf("userJWT %v, want an http bearer scheme of format JWT", jwt)
	}
	header, _ := schemes["userHeader"].(map[string]any)
	if header["type"] != "apiKey" || header["in"] != "header" || header["name"] != httpapi.DefaultUserHeader {
		t.Errorf("userHeader %v, want an apiKey in the header %s", header, httpapi.DefaultUserHeader)
	}
	if _, ok := join["responses"].(map[string]any)["401"]; !ok {
		t.Error("join declares no 401")
	}
}
