package httpapi

import (
	"bytes"
	"errors"
	"fmt"
	"net/http"
	"strings"

	"github.com/gin-gonic/gin"

	"seckill/activity"
)

// Who joins: the userId of the body (development), a header the gateway
// sets, or the sub of a verified JWT (SECKILL_USER_AUTH). In the last two
// the body may still name the user, and must name the same one; the
// per-user rate limit, the per-user slot limit and the Idempotency-Key all
// key on the identity so found.

// The modes of UserAuth.
const (
	UserFromBody   = "body"
	UserFromHeader = "header"
	UserFromJWT    = "jwt"
)

// DefaultUserHeader is the header of UserFromHeader unless another is named.
const DefaultUserHeader = "X-User-ID"

// TokenVerifier verifies a user's bearer token and returns who it names; it
// returns an error for a token that is not valid now. *jwtauth.Verifier is
// one.
type TokenVerifier interface {
	Subject(token string) (string, error)
}

// UserAuth says where a join's user comes from.
type UserAuth struct {
	// Mode is UserFromBody (also when empty), UserFromHeader or UserFromJWT.
	Mode string
	// Header is the header of UserFromHeader, DefaultUserHeader when empty.
	Header string
	// Tokens verifies the bearer tokens of UserFromJWT.
	Tokens TokenVerifier
}

// Errors of a join without a verified user.
var (
	errUserToken  = errors.New("httpapi: no valid user token")
	errUserHeader = errors.New("httpapi: no valid user header")
)

// userAuth is a UserAuth made ready for requests.
type userAuth struct {
	mode   string
	header string // canonical, as net/http keeps it
	tokens TokenVerifier
}

// newUserAuth checks u: a mode New cannot serve is a mistake of the
// program that made the Config, not of a request.
func newUserAuth(u UserAuth) userAuth {
	if u.Header == "" {
		u.Header = DefaultUserHeader
	}
	ua := userAuth{mode: u.Mode, tokens: u.Tokens, header: http.CanonicalHeaderKey(u.Header)}
	switch ua.mode {
	case "":
		ua.mode = UserFromBody
	case UserFromBody, UserFromHeader:
	case UserFromJWT:
		if ua.tokens == nil {
			panic("httpapi: UserAuth mode jwt without a TokenVerifier")
		}
	default:
		panic(fmt.Sprintf("httpapi: unknown UserAuth mode %q", u.Mode))
	}
	return ua
}

// bearerChallenge is the WWW-Authenticate of a join refused for its token
// (RFC 6750 §3).
const bearerChallenge = `Bearer realm="seckill", error="invalid_token"`

// verifiedUser returns the user the request is verified to come from, or
// "" in UserFromBody mode. It returns errUserHeader or errUserToken when
// there is none: the header missing, given twice or not a valid userId;
// the token missing, not valid now, or of a sub that is no valid userId.
func (s *Server) verifiedUser(c *gin.Context) (string, error) {
	switch s.users.mode {
	case UserFromHeader:
		// Given twice, the gateway added its own to the caller's instead of
		// replacing it: neither can be trusted.
		v := c.Request.Header[s.users.header]
		if len(v) != 1 || !activity.ValidUserID(v[0]) {
			return "", errUserHeader
		}
		return v[0], nil
	case UserFromJWT:
		v := c.Request.Header["Authorization"]
		tok, ok := "", len(v) == 1
		if ok {
			tok, ok = bearerToken(v[0])
		}
		if !ok {
			c.Header("WWW-Authenticate", `Bearer realm="seckill"`)
			return "", errUserToken
		}
		sub, err := s.users.tokens.Subject(tok)
		if err != nil || !activity.ValidUserID(sub) {
			c.Header("WWW-Authenticate", bearerChallenge)
			return "", errUserToken
		}
		return sub, nil
	}
	return "", nil
}

// bearerToken returns the token of an Authorization header "Bearer <token>"
// (the scheme in any case, RFC 7235), or false.
func bearerToken(h string) (string, bool) {
	scheme, tok, ok := strings.Cut(h, " ")
	if !ok || !strings.EqualFold(scheme, "Bearer") || tok == "" || strings.ContainsAny(tok, " \t") {
		return "", false
	}
	return tok, true
}

// joinUser returns the user a join is for: verified (when not empty) or the
// body's userId. A body may be left empty when the user is verified; a
// userId in it other than the verified one is a 400 naming userId.
func joinUser(verified string, body []byte) (string, error) {
	var req joinRequest
	if u, ok := fastJoinBody(body); ok {
		req.UserID = &u
	} else if verified == "" || len(bytes.TrimSpace(body)) > 0 {
		if err := decodeBody(body, &req); err != nil {
			return "", err
		}
	}
	switch {
	case verified == "" && req.UserID == nil:
		return "", invalid("userId", "is required")
	case verified == "":
		return *req.UserID, nil
	case req.UserID != nil && *req.UserID != verified:
		return "", invalid("userId", "is not the user the request is authenticated as; leave it out or send the same")
	}
	return verified, nil
}
