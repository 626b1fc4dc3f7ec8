// Command ceiling is a bare gin server with one POST-JSON endpoint, the HTTP
// ceiling the join endpoint is compared with: it decodes the same body and
// answers a small JSON object, and touches nothing else.
//
//	go run ./loadtest/ceiling -addr 127.0.0.1:8090
package main

import (
	"encoding/json"
	"flag"
	"log"
	"net/http"

	"github.com/gin-gonic/gin"
)

func main() {
	addr := flag.String("addr", "127.0.0.1:8090", "listen address")
	flag.Parse()
	gin.SetMode(gin.ReleaseMode)
	e := gin.New()
	e.POST("/hello", func(c *gin.Context) {
		var req struct {
			UserID string `json:"userId"`
		}
		dec := json.NewDecoder(http.MaxBytesReader(c.Writer, c.Request.Body, 8<<10))
		dec.DisallowUnknownFields()
		if err := dec.Decode(&req); err != nil {
			c.JSON(http.StatusBadRequest, gin.H{"error": gin.H{"code": "invalid_request", "message": "bad body"}})
			return
		}
		c.JSON(http.StatusOK, gin.H{"userId": req.UserID, "ok": true})
	})
	log.Fatal(http.ListenAndServe(*addr, e))
}
