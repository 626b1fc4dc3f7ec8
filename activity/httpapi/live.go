package httpapi

import (
	"encoding/csv"
	"net/http"
	"strconv"
	"time"

	"github.com/gin-gonic/gin"

	"seckill/activity"
)

// The endpoints of a live activity: its stock changed, its winners
// exported, its tokens redeemed by the draw.

func (s *Server) changeStock(c *gin.Context) {
	n, err := id(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	var req stockRequest
	if err := decode(c, &req); err != nil {
		s.fail(c, err)
		return
	}
	if req.Stock == nil {
		s.fail(c, invalid("stock", "is required"))
		return
	}
	a, err := s.activities.ChangeStock(c.Request.Context(), n, *req.Stock)
	s.metrics.stockChanges.WithLabelValues(adminResult(err)).Inc()
	if err != nil {
		s.fail(c, err)
		return
	}
	c.JSON(http.StatusOK, newActivityResponse(a, nil))
}

func (s *Server) redeem(c *gin.Context) {
	p, err := s.activities.Redeem(c.Request.Context(), c.Param("token"))
	s.metrics.redeems.WithLabelValues(adminResult(err)).Inc()
	if err != nil {
		s.fail(c, err)
		return
	}
	writeToken(c, p)
}

// adminResult is the label an admin action that ended with err is counted
// under: ok, or the code of its answer.
func adminResult(err error) string {
	if err == nil {
		return "ok"
	}
	return answerTo(err).code
}

// Pages of the export: DefaultExportPage records unless ?limit= says
// otherwise; the CSV is written csvPage records at a time, each within
// csvPageTimeout, which moves the server's write deadline on: the CSV of a
// million records takes longer than any one answer may, and a client that
// stops reading is still cut off.
const (
	DefaultExportPage = 100
	csvPage           = activity.MaxExportPage
	csvPageTimeout    = 15 * time.Second
)

type participationsResponse struct {
	Participations []tokenResponse `json:"participations"`
	// Next is the cursor of the next page (?after=), absent after the last.
	Next string `json:"next,omitempty"`
}

func (s *Server) participations(c *gin.Context) {
	n, err := id(c)
	if err != nil {
		s.fail(c, err)
		return
	}
	format := c.DefaultQuery("format", "json")
	if format != "json" && format != "csv" {
		s.fail(c, invalid("format", "must be json or csv"))
		return
	}
	limit := DefaultExportPage
	if v, ok := c.GetQuery("limit"); ok {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > activity.MaxExportPage {
			s.fail(c, invalid("limit", "must be between 1 and "+strconv.Itoa(activity.MaxExportPage)))
			return
		}
	}
	after := c.Query("after")
	if format == "csv" {
		s.exportCSV(c, n, after)
		return
	}
	page, err := s.activities.Participations(c.Request.Context(), n, after, limit)
	if err != nil {
		s.fail(c, err)
		return
	}
	out := participationsResponse{Participations: make([]tokenResponse, len(page.Participations)), Next: page.Next}
	for i := range page.Participations {
		out.Participations[i] = newTokenResponse(&page.Participations[i])
	}
	s.metrics.exported.Add(float64(len(out.Participations)))
	c.JSON(http.StatusOK, out)
}

// csvHeader is the header row of the CSV export.
var csvHeader = []string{"token", "slot", "userId", "issuedAt", "redeemedAt"}

// exportCSV streams every valid record of an activity from the cursor on,
// a page at a time, so its memory does not grow with the sale. The first
// page is read before anything is written: an activity that does not exist
// or a database that is down is answered with the error JSON. A failure
// after the first page cuts the response off, so that a client never takes
// a short file for the whole one.
func (s *Server) exportCSV(c *gin.Context, id int64, after string) {
	ctx := c.Request.Context()
	page, err := s.activities.Participations(ctx, id, after, csvPage)
	if err != nil {
		s.fail(c, err)
		return
	}
	c.Header("Content-Type", "text/csv; charset=utf-8")
	c.Header("Content-Disposition", `attachment; filename="activity-`+strconv.FormatInt(id, 10)+`-participations.csv"`)
	c.Status(http.StatusOK)
	rc := http.NewResponseController(c.Writer)
	w := csv.NewWriter(c.Writer)
	_ = w.Write(csvHeader)
	row := make([]string, len(csvHeader))
	for {
		_ = rc.SetWriteDeadline(time.Now().Add(csvPageTimeout)) // not every ResponseWriter has one
		for _, p := range page.Participations {
			row[0], row[1], row[2] = p.Token, strconv.FormatInt(p.Slot, 10), p.UserID
			row[3], row[4] = p.IssuedAt.Format(time.RFC3339Nano), ""
			if p.RedeemedAt != nil {
				row[4] = p.RedeemedAt.Format(time.RFC3339Nano)
			}
			_ = w.Write(row)
		}
		w.Flush()
		s.metrics.exported.Add(float64(len(page.Participations)))
		if w.Error() != nil || page.Next == "" {
			return // a client gone is no error of ours
		}
		if page, err = s.activities.Participations(ctx, id, page.Next, csvPage); err != nil {
			if ctx.Err() == nil && s.logGate.Open() {
				s.log.Error("export cut off", "activity", id, "requestId", requestIDOf(c), "err", err)
			}
			panic(http.ErrAbortHandler)
		}
	}
}
