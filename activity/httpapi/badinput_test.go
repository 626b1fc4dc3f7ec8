package httpapi_test

import (
	"encoding/base64"
	"fmt"
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/golang-jwt/jwt/v5"

	"seckill/activity/httpapi"
	"seckill/internal/jwttest"
)

func TestBadInput(t *testing.T) {
	t.Parallel()
	a := newAPI(t)
	draft := a.create(t, `{"name":"draft","stock":5,"beginAt":"2030-01-01T00:00:00Z","endAt":"2030-01-02T00:00:00Z"}`)
	open := a.inState(t, "open", 10, 1)

	const (
		create = "/api/v1/admin/activities"
		begin  = `"beginAt":"2030-01-01T00:00:00Z"`
		end    = `"endAt":"2030-01-02T00:00:00Z"`
	)
	valid := `{"name":"ok","stock":5,` + begin + `,` + end + `}`
	patch := fmt.Sprintf("/api/v1/admin/activities/%d", draft.ID)
	join := fmt.Sprintf("/api/v1/activities/%d/join", open.ID)
	stock := fmt.Sprintf("/api/v1/admin/activities/%d/stock", open.ID)
	export := fmt.Sprintf("/api/v1/admin/activities/%d/participations", open.ID)
	timeline := fmt.Sprintf("/api/v1/admin/activities/%d/timeline", open.ID)
	duplicate := fmt.Sprintf("/api/v1/admin/activities/%d/duplicate", open.ID)
	redeem := "/api/v1/admin/tokens/" + decode[tokenJSON](t, a.join(t, open.ID, "u-held"), http.StatusOK).Token + "/redeem"
	bearer := "Bearer " + adminToken

	type tc struct {
		name, method, path, body string
		auth                     string // the Authorization header; "-" for none
		status                   int
		code, field              string
	}
	bad := func(name, method, path, body, field string) tc {
		return tc{name, method, path, body, bearer, http.StatusBadRequest, "invalid_request", field}
	}
	tests := []tc{
		bad("CreateMalformedJSON", "POST", create, `{"name":"x",`, "body"),
		bad("CreateEmptyBody", "POST", create, ``, "body"),
		bad("CreateArray", "POST", create, `[`+valid+`]`, "body"),
		bad("CreateString", "POST", create, `"x"`, "body"),
		bad("CreateNumber", "POST", create, `42`, "body"),
		bad("CreateNull", "POST", create, `null`, "name"),
		bad("CreateUnknownField", "POST", create, `{"name":"ok","stock":5,`+begin+`,`+end+`,"color":"red"}`, "color"),
		bad("CreateStockString", "POST", create, `{"name":"ok","stock":"5",`+begin+`,`+end+`}`, "stock"),
		bad("CreateStockFraction", "POST", create, `{"name":"ok","stock":1.5,`+begin+`,`+end+`}`, "stock"),
		bad("CreateStockHuge", "POST", create, `{"name":"ok","stock":99999999999999999999,`+begin+`,`+end+`}`, "stock"),
		bad("CreateStockZero", "POST", create, `{"name":"ok","stock":0,`+begin+`,`+end+`}`, "stock"),
		bad("CreateStockNegative", "POST", create, `{"name":"ok","stock":-1,`+begin+`,`+end+`}`, "stock"),
		bad("CreateStockOverMax", "POST", create, `{"name":"ok","stock":10000001,`+begin+`,`+end+`}`, "stock"),
		bad("CreateStockMissing", "POST", create, `{"name":"ok",`+begin+`,`+end+`}`, "stock"),
		bad("CreatePerUserLimitZero", "POST", create, `{"name":"ok","stock":5,"perUserLimit":0,`+begin+`,`+end+`}`, "perUserLimit"),
		bad("CreatePerUserLimitString", "POST", create, `{"name":"ok","stock":5,"perUserLimit":"1",`+begin+`,`+end+`}`, "perUserLimit"),
		bad("CreateNameEmpty", "POST", create, `{"name":"","stock":5,`+begin+`,`+end+`}`, "name"),
		bad("CreateNameTooLong", "POST", create, `{"name":"`+strings.Repeat("n", 129)+`","stock":5,`+begin+`,`+end+`}`, "name"),
		bad("CreateNameTooLongMultibyte", "POST", create, `{"name":"`+strings.Repeat("é", 129)+`","stock":5,`+begin+`,`+end+`}`, "name"),
		bad("CreateShardsZero", "POST", create, `{"name":"ok","stock":5,"shards":0,`+begin+`,`+end+`}`, "shards"),
		bad("CreateShardsOverMax", "POST", create, `{"name":"ok","stock":5,"shards":65,`+begin+`,`+end+`}`, "shards"),
		bad("CreateShardsNegative", "POST", create, `{"name":"ok","stock":5,"shards":-1,`+begin+`,`+end+`}`, "shards"),
		bad("CreateShardsString", "POST", create, `{"name":"ok","stock":5,"shards":"3",`+begin+`,`+end+`}`, "shards"),
		bad("CreateShardsFraction", "POST", create, `{"name":"ok","stock":5,"shards":2.5,`+begin+`,`+end+`}`, "shards"),
		bad("CreateShardsHuge", "POST", create, `{"name":"ok","stock":5,"shards":99999999999999999999,`+begin+`,`+end+`}`, "shards"),
		bad("CreatePerUserLimitOverMax", "POST", create, `{"name":"ok","stock":5,"perUserLimit":1001,`+begin+`,`+end+`}`, "perUserLimit"),
		bad("CreateNameMissing", "POST", create, `{"stock":5,`+begin+`,`+end+`}`, "name"),
		bad("CreateNameNumber", "POST", create, `{"name":5,"stock":5,`+begin+`,`+end+`}`, "name"),
		bad("CreateDescriptionTooLong", "POST", create, `{"name":"ok","description":"`+strings.Repeat("d", 2001)+`","stock":5,`+begin+`,`+end+`}`, "description"),
		bad("CreateEndBeforeBegin", "POST", create, `{"name":"ok","stock":5,"beginAt":"2030-01-02T00:00:00Z","endAt":"2030-01-01T00:00:00Z"}`, "endAt"),
		bad("CreateEndEqualsBegin", "POST", create, `{"name":"ok","stock":5,"beginAt":"2030-01-02T00:00:00Z","endAt":"2030-01-02T00:00:00Z"}`, "endAt"),
		bad("CreateBeginBadFormat", "POST", create, `{"name":"ok","stock":5,"beginAt":"2030-01-01 00:00:00",`+end+`}`, "beginAt"),
		bad("CreateEndBadFormat", "POST", create, `{"name":"ok","stock":5,`+begin+`,"endAt":"tomorrow"}`, "endAt"),
		bad("CreateBeginNumber", "POST", create, `{"name":"ok","stock":5,"beginAt":1893456000,`+end+`}`, "beginAt"),
		bad("CreateBeginMissing", "POST", create, `{"name":"ok","stock":5,`+end+`}`, "beginAt"),
		bad("CreateTrailingGarbage", "POST", create, valid+` x`, "body"),
		bad("CreateTwoObjects", "POST", create, valid+valid, "body"),
		{"CreateOver8KiB", "POST", create, `{"name":"ok","description":"` + strings.Repeat("d", 9000) + `","stock":5,` + begin + `,` + end + `}`, bearer, http.StatusRequestEntityTooLarge, "too_large", ""},

		bad("PatchMalformedJSON", "PATCH", patch, `{"name":`, "body"),
		bad("PatchArray", "PATCH", patch, `[]`, "body"),
		bad("PatchUnknownField", "PATCH", patch, `{"state":"open"}`, "state"),
		bad("PatchStockZero", "PATCH", patch, `{"stock":0}`, "stock"),
		bad("PatchStockString", "PATCH", patch, `{"stock":"7"}`, "stock"),
		bad("PatchShardsZero", "PATCH", patch, `{"shards":0}`, "shards"),
		bad("PatchShardsOverMax", "PATCH", patch, `{"shards":65}`, "shards"),
		bad("PatchShardsString", "PATCH", patch, `{"shards":"3"}`, "shards"),
		{"PatchShardsOfOpen", "PATCH", fmt.Sprintf("/api/v1/admin/activities/%d", open.ID), `{"shards":2}`, bearer, http.StatusConflict, "invalid_state", ""},
		bad("PatchNameEmpty", "PATCH", patch, `{"name":""}`, "name"),
		bad("PatchEndBeforeBegin", "PATCH", patch, `{"endAt":"2029-12-31T00:00:00Z"}`, "endAt"),
		bad("PatchBadTime", "PATCH", patch, `{"beginAt":"soon"}`, "beginAt"),
		bad("PatchTrailingGarbage", "PATCH", patch, `{"name":"x"}]`, "body"),
		{"PatchOver8KiB", "PATCH", patch, `{"description":"` + strings.Repeat("d", 9000) + `"}`, bearer, http.StatusRequestEntityTooLarge, "too_large", ""},

		bad("JoinMalformedJSON", "POST", join, `{"userId":`, "body"),
		bad("JoinEmptyBody", "POST", join, ``, "body"),
		bad("JoinArray", "POST", join, `[{"userId":"u-ok"}]`, "body"),
		bad("JoinString", "POST", join, `"u-ok"`, "body"),
		bad("JoinUnknownField", "POST", join, `{"userId":"u-ok","vip":true}`, "vip"),
		bad("JoinUserIDNumber", "POST", join, `{"userId":12345}`, "userId"),
		bad("JoinUserIDNull", "POST", join, `{"userId":null}`, "userId"),
		bad("JoinUserIDMissing", "POST", join, `{}`, "userId"),
		bad("JoinUserIDEmpty", "POST", join, `{"userId":""}`, "userId"),
		bad("JoinUserIDSpace", "POST", join, `{"userId":"u ok"}`, "userId"),
		bad("JoinUserIDSlash", "POST", join, `{"userId":"u/ok"}`, "userId"),
		bad("JoinUserIDColon", "POST", join, `{"userId":"u:ok"}`, "userId"),
		bad("JoinUserIDUnicode", "POST", join, `{"userId":"üser"}`, "userId"),
		bad("JoinUserIDMarkup", "POST", join, `{"userId":"<script>"}`, "userId"),
		bad("JoinUserIDNUL", "POST", join, `{"userId":"u\u0000ok"}`, "userId"),
		bad("JoinUserID65Chars", "POST", join, `{"userId":"`+strings.Repeat("u", 65)+`"}`, "userId"),
		bad("JoinTrailingGarbage", "POST", join, `{"userId":"u-ok"} x`, "body"),
		bad("JoinTwoObjects", "POST", join, `{"userId":"u-ok"}{"userId":"u-ok2"}`, "body"),
		{"JoinOver8KiB", "POST", join, `{"userId":"` + strings.Repeat("u", 9000) + `"}`, "-", http.StatusRequestEntityTooLarge, "too_large", ""},
		{"JoinOver8KiBOfWhitespace", "POST", join, `{"userId":"u-ok"}` + strings.Repeat(" ", 9000), "-", http.StatusRequestEntityTooLarge, "too_large", ""},

		bad("PatchAutoOpenString", "PATCH", patch, `{"autoOpen":"yes"}`, "autoOpen"),
		bad("PatchAutoOpenNumber", "PATCH", patch, `{"autoOpen":1}`, "autoOpen"),

		bad("StockMalformedJSON", "POST", stock, `{"stock":`, "body"),
		bad("StockEmptyBody", "POST", stock, ``, "body"),
		bad("StockMissing", "POST", stock, `{}`, "stock"),
		bad("StockNull", "POST", stock, `{"stock":null}`, "stock"),
		bad("StockZero", "POST", stock, `{"stock":0}`, "stock"),
		bad("StockNegative", "POST", stock, `{"stock":-5}`, "stock"),
		bad("StockOverMax", "POST", stock, `{"stock":10000001}`, "stock"),
		bad("StockString", "POST", stock, `{"stock":"20"}`, "stock"),
		bad("StockFraction", "POST", stock, `{"stock":20.5}`, "stock"),
		bad("StockUnknownField", "POST", stock, `{"stock":20,"name":"x"}`, "name"),
		bad("StockArray", "POST", stock, `[20]`, "body"),
		{"StockOver8KiB", "POST", stock, `{"stock":20` + strings.Repeat(" ", 9000) + `}`, bearer, http.StatusRequestEntityTooLarge, "too_large", ""},

		bad("TimelineSecondsZero", "GET", timeline+"?seconds=0", "", "seconds"),
		bad("TimelineSecondsTooMany", "GET", timeline+"?seconds=3601", "", "seconds"),
		bad("TimelineSecondsWord", "GET", timeline+"?seconds=all", "", "seconds"),
		bad("TimelineSecondsEmpty", "GET", timeline+"?seconds=", "", "seconds"),
		bad("TimelineBadID", "GET", "/api/v1/admin/activities/x/timeline", "", "id"),

		bad("DuplicateEmptyName", "POST", duplicate, `{"name":""}`, "name"),
		bad("DuplicateNameNumber", "POST", duplicate, `{"name":7}`, "name"),
		bad("DuplicateNameTooLong", "POST", duplicate, `{"name":"`+strings.Repeat("n", 129)+`"}`, "name"),
		bad("DuplicateUnknownField", "POST", duplicate, `{"stock":3}`, "stock"),
		bad("DuplicateMalformed", "POST", duplicate, `{"name":`, "body"),
		bad("DraftBadID", "POST", "/api/v1/admin/activities/0/draft", "", "id"),

		bad("ExportLimitZero", "GET", export+"?limit=0", "", "limit"),
		bad("ExportLimit1001", "GET", export+"?limit=1001", "", "limit"),
		bad("ExportLimitWord", "GET", export+"?limit=all", "", "limit"),
		bad("ExportFormat", "GET", export+"?format=xlsx", "", "format"),
		bad("ExportAfterGarbage", "GET", export+"?after=xyz", "", "after"),
		bad("ExportAfterNoToken", "GET", export+"?after=12.", "", "after"),
		bad("ExportAfterLeadingZero", "GET", export+"?after=012."+strings.Repeat("A", 54), "", "after"),
		bad("ExportAfterNegative", "GET", export+"?after=-1."+strings.Repeat("A", 54), "", "after"),
		bad("ExportAfterShortToken", "GET", export+"?after=1.AAAA", "", "after"),
		bad("ExportAfterDotInToken", "GET", export+"?after=1."+strings.Repeat("A", 53)+".", "", "after"),
		bad("ExportCSVAfterGarbage", "GET", export+"?format=csv&after=xyz", "", "after"),

		{"RedeemForged", "POST", "/api/v1/admin/tokens/" + strings.Repeat("A", 54) + "/redeem", "", bearer, http.StatusNotFound, "not_found", ""},
		{"RedeemGarbage", "POST", "/api/v1/admin/tokens/%3Cscript%3E/redeem", "", bearer, http.StatusNotFound, "not_found", ""},
		{"RedeemWithGet", "GET", redeem, "", bearer, http.StatusMethodNotAllowed, "method_not_allowed", ""},

		bad("StaffNoName", "POST", "/api/v1/admin/staff", `{"role":"viewer"}`, "name"),
		bad("StaffNoRole", "POST", "/api/v1/admin/staff", `{"name":"zed"}`, "role"),
		bad("StaffBadRole", "POST", "/api/v1/admin/staff", `{"name":"zed","role":"boss"}`, "role"),
		bad("StaffSystemRole", "POST", "/api/v1/admin/staff", `{"name":"zed","role":"system"}`, "role"),
		bad("StaffBadName", "POST", "/api/v1/admin/staff", `{"name":"z e d","role":"viewer"}`, "name"),
		bad("StaffReservedName", "POST", "/api/v1/admin/staff", `{"name":"admin","role":"viewer"}`, "name"),
		bad("StaffScheduleName", "POST", "/api/v1/admin/staff", `{"name":"schedule","role":"viewer"}`, "name"),
		bad("StaffUnknownField", "POST", "/api/v1/admin/staff", `{"name":"zed","role":"viewer","admin":true}`, "admin"),
		bad("StaffNameNumber", "POST", "/api/v1/admin/staff", `{"name":7,"role":"viewer"}`, "name"),
		{"StaffRemoveUnknown", "DELETE", "/api/v1/admin/staff/nobody", "", bearer, http.StatusNotFound, "not_found", ""},
		bad("AuditLimitZero", "GET", "/api/v1/admin/audit?limit=0", "", "limit"),
		bad("AuditLimitTooBig", "GET", "/api/v1/admin/audit?limit=501", "", "limit"),
		bad("AuditActivityWord", "GET", "/api/v1/admin/audit?activityId=x", "", "activityId"),
		bad("AuditAfterNegative", "GET", "/api/v1/admin/audit?after=-3", "", "after"),

		bad("ListBadState", "GET", create+"?state=running", "", "state"),
		bad("ListEmptyState", "GET", create+"?state=", "", "state"),
		bad("ListLimitZero", "GET", create+"?limit=0", "", "limit"),
		bad("ListLimit101", "GET", create+"?limit=101", "", "limit"),
		bad("ListLimitWord", "GET", create+"?limit=ten", "", "limit"),
		bad("ListOffsetNegative", "GET", create+"?offset=-1", "", "offset"),
		bad("ListOffsetWord", "GET", create+"?offset=x", "", "offset"),
		bad("ListEmptyQuery", "GET", create+"?q=", "", "q"),
		bad("ListQueryTooLong", "GET", create+"?q="+strings.Repeat("x", 129), "", "q"),
		bad("ListQueryNotUTF8", "GET", create+"?q=%ff", "", "q"),
		bad("ListBadSort", "GET", create+"?sort=name", "", "sort"),
		bad("ListEmptySort", "GET", create+"?sort=", "", "sort"),
		bad("ListSortCase", "GET", create+"?sort=beginat", "", "sort"),

		{"UnknownRoute", "GET", "/api/v1/nothing", "", "-", http.StatusNotFound, "not_found", ""},
		{"UnknownVersion", "POST", fmt.Sprintf("/api/v2/activities/%d/join", open.ID), `{"userId":"u-ok"}`, "-", http.StatusNotFound, "not_found", ""},
		{"UnknownAdminAction", "POST", fmt.Sprintf("/api/v1/admin/activities/%d/delete", draft.ID), "", bearer, http.StatusNotFound, "not_found", ""},
		{"JoinWithGet", "GET", join, "", "-", http.StatusMethodNotAllowed, "method_not_allowed", ""},
		{"JoinWithPut", "PUT", join, `{"userId":"u-ok"}`, "-", http.StatusMethodNotAllowed, "method_not_allowed", ""},
		{"DeleteActivity", "DELETE", patch, "", bearer, http.StatusMethodNotAllowed, "method_not_allowed", ""},
		{"PostHealthz", "POST", "/healthz", "", "-", http.StatusMethodNotAllowed, "method_not_allowed", ""},
	}

	badIDs := []struct{ name, id string }{
		{"Letters", "abc"}, {"Zero", "0"}, {"Negative", "-1"}, {"Overflow", "99999999999999999999"},
		{"Fraction", "1.5"}, {"Space", "%20"},
	}
	for _, b := range badIDs {
		tests = append(tests,
			bad("JoinID"+b.name, "POST", "/api/v1/activities/"+b.id+"/join", `{"userId":"u-ok"}`, "id"),
			bad("PublicGetID"+b.name, "GET", "/api/v1/activities/"+b.id, "", "id"),
			bad("AdminGetID"+b.name, "GET", "/api/v1/admin/activities/"+b.id, "", "id"),
			bad("PatchID"+b.name, "PATCH", "/api/v1/admin/activities/"+b.id, `{"name":"x"}`, "id"),
			bad("ApproveID"+b.name, "POST", "/api/v1/admin/activities/"+b.id+"/approve", "", "id"),
			bad("StockID"+b.name, "POST", "/api/v1/admin/activities/"+b.id+"/stock", `{"stock":5}`, "id"),
			bad("ExportID"+b.name, "GET", "/api/v1/admin/activities/"+b.id+"/participations", "", "id"),
		)
	}

	adminCalls := []struct{ name, method, path, body string }{
		{"Create", "POST", create, valid},
		{"List", "GET", create, ""},
		{"Get", "GET", patch, ""},
		{"Patch", "PATCH", patch, `{"name":"hijacked"}`},
		{"Approve", "POST", patch + "/approve", ""},
		{"Close", "POST", fmt.Sprintf("/api/v1/admin/activities/%d/close", open.ID), ""},
		{"Stock", "POST", stock, `{"stock":50}`},
		{"Export", "GET", export, ""},
		{"ExportCSV", "GET", export + "?format=csv", ""},
		{"Redeem", "POST", redeem, ""},
	}
	auths := []struct{ name, header string }{
		{"NoAuthorization", "-"},
		{"WrongToken", "Bearer wrong-" + adminToken},
		{"EmptyBearer", "Bearer "},
		{"BareBearer", "Bearer"},
		{"TokenWithoutScheme", adminToken},
		{"BasicScheme", "Basic " + adminToken},
		{"TokenWithSuffix", bearer + "x"},
	}
	for _, c := range adminCalls {
		for _, au := range auths {
			tests = append(tests, tc{c.name + au.name, c.method, c.path, c.body, au.header, http.StatusUnauthorized, "unauthorized", ""})
		}
	}

	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := a.snapshot(t, draft.ID, open.ID)
			var header []string
			if tt.auth != "-" {
				header = []string{"Authorization", tt.auth}
			}
			r := a.call(t, tt.method, tt.path, tt.body, header...)
			wantError(t, r, tt.status, tt.code, tt.field)
			if after := a.snapshot(t, draft.ID, open.ID); after != before {
				t.Fatalf("the request changed state:\nbefore %+v\nafter  %+v", before, after)
			}
		})
	}

	t.Run("MethodNotAllowedNamesAllowed", func(t *testing.T) {
		r := a.call(t, "GET", join, "")
		if allow := r.header.Get("Allow"); !strings.Contains(allow, "POST") {
			t.Fatalf("Allow %q, want POST", allow)
		}
	})

	// The bad requests above must not have hidden a broken happy path.
	t.Run("ValidRequestsStillWork", func(t *testing.T) {
		decode[tokenJSON](t, a.join(t, open.ID, "u-ok"), http.StatusOK)
		if st := a.get(t, open.ID).Stats; st.Claimed != 2 { // u-held and u-ok
			t.Fatalf("claimed %d after two valid joins, want 2", st.Claimed)
		}
		decode[activityJSON](t, a.admin(t, "PATCH", patch, `{"name":"renamed"}`), http.StatusOK)
		a.create(t, valid)
		decode[activityJSON](t, a.admin(t, "POST", stock, `{"stock":12}`), http.StatusOK)
		a.env.Reconcile(t)
		if p := decode[pageJSON](t, a.admin(t, "GET", export, ""), http.StatusOK); len(p.Participations) != 2 {
			t.Fatalf("export of %d records, want 2", len(p.Participations))
		}
		decode[redeemedJSON](t, a.admin(t, "POST", redeem, ""), http.StatusOK)
	})
}

// TestBadInputJWT: in jwt mode, every join whose token is missing, expired,
// not yet valid, of another issuer or audience, signed by another key,
// tampered with, unsigned (alg none) or of an algorithm its key does not
// allow answers 401 unauthorized; a good token with a bad body answers as
// in body mode, a body naming another user 400 naming userId; none of them
// changes anything.
func TestBadInputJWT(t *testing.T) {
	t.Parallel()
	a := userAPI(t, httpapi.UserAuth{Mode: httpapi.UserFromJWT}, httpapi.Config{})
	draft := a.create(t, `{"name":"draft","stock":5,"beginAt":"2030-01-01T00:00:00Z","endAt":"2030-01-02T00:00:00Z"}`)
	open := a.inState(t, "open", 10, 1)
	join := fmt.Sprintf("/api/v1/activities/%d/join", open.ID)
	k, other := jwttest.Shared(t), jwttest.Generate(t)
	claims := func(kv ...any) jwt.MapClaims {
		return jwttest.With(jwttest.Claims("u-jwt", testIssuer, testAudience), kv...)
	}
	hs := func(c jwt.MapClaims) string { return jwttest.Sign(t, jwt.SigningMethodHS256, k.HS, jwttest.KidHS, c) }
	ago := func(d time.Duration) int64 { return time.Now().Add(-d).Unix() }
	good := hs(claims())
	parts := strings.Split(good, ".")
	forged := base64.RawURLEncoding.EncodeToString([]byte(fmt.Sprintf(`{"sub":"u-admin","iss":%q,"aud":%q,"exp":%d}`,
		testIssuer, testAudience, time.Now().Add(time.Hour).Unix())))

	type tc struct {
		name, auth, body string
		status           int
		code, field      string
	}
	unauthorized := func(name, auth string) tc {
		return tc{name, auth, `{"userId":"u-jwt"}`, http.StatusUnauthorized, "unauthorized", ""}
	}
	tests := []tc{
		unauthorized("NoAuthorization", ""),
		unauthorized("EmptyBearer", "Bearer "),
		unauthorized("BasicScheme", "Basic "+good),
		unauthorized("NoScheme", good),
		unauthorized("TwoSpaces", "Bearer  "+good),
		unauthorized("TrailingGarbage", "Bearer "+good+" x"),
		unauthorized("AdminToken", "Bearer "+adminToken),
		unauthorized("Garbage", "Bearer not.a.jwt"),
		unauthorized("Expired", "Bearer "+hs(claims("exp", ago(5*time.Minute)))),
		unauthorized("NoExpiry", "Bearer "+hs(claims("exp", nil))),
		unauthorized("NotYetValid", "Bearer "+hs(claims("nbf", ago(-5*time.Minute)))),
		unauthorized("WrongIssuer", "Bearer "+hs(claims("iss", "https://evil.test"))),
		unauthorized("WrongAudience", "Bearer "+hs(claims("aud", "another-service"))),
		unauthorized("NoSubject", "Bearer "+hs(claims("sub", nil))),
		unauthorized("SubjectNotAUserID", "Bearer "+hs(claims("sub", "u jwt"))),
		unauthorized("WrongKey", "Bearer "+jwttest.Sign(t, jwt.SigningMethodHS256, other.HS, jwttest.KidHS, claims())),
		unauthorized("WrongRSAKey", "Bearer "+jwttest.Sign(t, jwt.SigningMethodRS256, other.RSA, jwttest.KidRSA, claims())),
		unauthorized("TamperedPayload", "Bearer "+parts[0]+"."+forged+"."+parts[2]),
		unauthorized("SignatureStripped", "Bearer "+parts[0]+"."+parts[1]+"."),
		unauthorized("AlgNone", "Bearer "+jwttest.Sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, jwttest.KidHS, claims())),
		unauthorized("RS256ForHS256Key", "Bearer "+jwttest.Sign(t, jwt.SigningMethodRS256, k.RSA, jwttest.KidHS, claims())),
		unauthorized("HS256ForRSAKey", "Bearer "+jwttest.Sign(t, jwt.SigningMethodHS256, k.HS, jwttest.KidRSA, claims())),
		unauthorized("UnknownKid", "Bearer "+jwttest.Sign(t, jwt.SigningMethodHS256, k.HS, "hs-9", claims())),
		unauthorized("NoKidOfManyKeys", "Bearer "+jwttest.Sign(t, jwt.SigningMethodHS256, k.HS, "", claims())),

		{"BodyOfAnotherUser", "Bearer " + good, `{"userId":"u-other"}`, http.StatusBadRequest, "invalid_request", "userId"},
		{"BodyUserIDInvalid", "Bearer " + good, `{"userId":"u other"}`, http.StatusBadRequest, "invalid_request", "userId"},
		{"BodyUserIDNumber", "Bearer " + good, `{"userId":7}`, http.StatusBadRequest, "invalid_request", "userId"},
		{"BodyMalformed", "Bearer " + good, `{"userId":`, http.StatusBadRequest, "invalid_request", "body"},
		{"BodyUnknownField", "Bearer " + good, `{"vip":true}`, http.StatusBadRequest, "invalid_request", "vip"},
		{"BodyArray", "Bearer " + good, `[]`, http.StatusBadRequest, "invalid_request", "body"},
		{"BodyOver8KiB", "Bearer " + good, `{"userId":"u-jwt"}` + strings.Repeat(" ", 9000), http.StatusRequestEntityTooLarge, "too_large", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			before := a.snapshot(t, draft.ID, open.ID)
			var header []string
			if tt.auth != "" {
				header = []string{"Authorization", tt.auth}
			}
			wantError(t, a.call(t, "POST", join, tt.body, header...), tt.status, tt.code, tt.field)
			if after := a.snapshot(t, draft.ID, open.ID); after != before {
				t.Fatalf("the request changed state:\nbefore %+v\nafter  %+v", before, after)
			}
		})
	}
	// The refused tokens above must not have hidden a broken happy path.
	t.Run("GoodTokenStillJoins", func(t *testing.T) {
		if tok := decode[tokenJSON](t, a.call(t, "POST", join, "", "Authorization", "Bearer "+good), http.StatusOK); tok.UserID != "u-jwt" {
			t.Fatalf("joined as %q, want u-jwt", tok.UserID)
		}
	})
}
