package httpapi

import (
	_ "embed"
	"net/http"

	"github.com/gin-gonic/gin"
)

// openAPI is the OpenAPI 3 document of the API, served at GET /openapi.yaml.
// A test holds it to the routes the Server registers.
//
//go:embed openapi.yaml
var openAPI []byte

func (s *Server) serveOpenAPI(c *gin.Context) {
	c.Data(http.StatusOK, "application/yaml; charset=utf-8", openAPI)
}

// Routes returns the method and path of every route the Server registers,
// with gin's path syntax (":id").
func (s *Server) Routes() []gin.RouteInfo { return s.engine.Routes() }
