package console

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"go.uber.org/zap"

	"github.com/ctmpipe/ctmpipe/internal/admin"
	"github.com/ctmpipe/ctmpipe/internal/opsapi"
	"github.com/ctmpipe/ctmpipe/internal/redistest"
	"github.com/ctmpipe/ctmpipe/internal/trail"
)

// TestEventLookupWithSlash: the event lookup finds an event whose id holds
// '/' and '=' through the real admin API (the console escapes the id; the
// API routes on the escaped path and takes the id whole). Before, ord/42
// had "no trail".
func TestEventLookupWithSlash(t *testing.T) {
	rdb := redistest.Start(t).Client(t)
	now := time.Now().UTC()
	w := trail.NewWriter(time.Hour)
	for _, id := range []string{"ord/42", "k=v/1"} {
		w.Put(&trail.Record{BusinessID: "1001", EventID: id, State: "sent", UpdatedAt: trail.At(now), FirstSeenAt: trail.At(now)})
	}
	if err := w.Flush(t.Context(), rdb); err != nil {
		t.Fatal(err)
	}
	adm := admin.New(admin.Config{Token: testToken}, zap.NewNop(), prometheus.NewRegistry())
	opsapi.Register(adm.API(), opsapi.Deps{Redis: rdb})
	c := New(Config{Token: testToken}, adm.Handler())
	ck, _ := login(t, c)
	for _, id := range []string{"ord/42", "k=v/1"} {
		q := url.Values{"business": {"1001"}, "event_id": {id}}
		rec := c.serve(t, req{method: "GET", path: "/console/events?" + q.Encode(), cookie: ck})
		if body := rec.Body.String(); rec.Code != http.StatusOK || !strings.Contains(body, `id="state">sent<`) {
			t.Errorf("event lookup of %q = %d; want its trail (sent):\n%s", id, rec.Code, body)
		}
	}
}
