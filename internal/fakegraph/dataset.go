package fakegraph

import (
	"hash/fnv"
	"io"
	"net/http"
	"strconv"
)

// DatasetCall is one Dataset API request the fake answered.
type DatasetCall struct {
	Method     string // GET or POST
	BusinessID string
	Token      string
}

// handleDataset is GET (read) and POST (create, or return the existing one)
// on /{version}/{business_id}/dataset, as the onboarding guide describes: "If
// there is already an existing dataset_id associated with the page, it will
// return that id." GET answers {"data":[{"id":...}]} or {"data":[]}; POST
// answers {"id":...}. Ids are stable per business id across servers.
func (s *Server) handleDataset(w http.ResponseWriter, r *http.Request, businessID string) {
	body, err := io.ReadAll(io.LimitReader(r.Body, maxBody))
	form, ferr := formFields(r, body)
	if err != nil || ferr != nil {
		s.writeError(w, http.StatusBadRequest, invalidParam("body is not a valid form"))
		return
	}
	token, gerr := s.authenticate(r, form)
	if gerr != nil {
		s.writeError(w, http.StatusBadRequest, *gerr)
		return
	}
	s.mu.Lock()
	s.datasetCalls = append(s.datasetCalls, DatasetCall{Method: r.Method, BusinessID: businessID, Token: token})
	id, ok := s.datasets[businessID]
	if !ok && r.Method == http.MethodPost {
		id, ok = stableID(businessID), true
		s.datasets[businessID] = id
	}
	s.mu.Unlock()
	if r.Method == http.MethodPost {
		writeJSON(w, http.StatusOK, map[string]string{"id": id})
		return
	}
	data := []map[string]string{}
	if ok {
		data = append(data, map[string]string{"id": id, "name": "Dataset for " + businessID})
	}
	writeJSON(w, http.StatusOK, map[string]any{"data": data})
}

// DatasetCalls returns the Dataset API requests answered so far.
func (s *Server) DatasetCalls() []DatasetCall {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]DatasetCall(nil), s.datasetCalls...)
}

// DatasetID returns the dataset id of businessID, if it exists.
func (s *Server) DatasetID(businessID string) (string, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	id, ok := s.datasets[businessID]
	return id, ok
}

func (s *Server) datasetExists(datasetID string) bool {
	if !s.opts.StrictDatasets {
		return true
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, id := range s.datasets {
		if id == datasetID {
			return true
		}
	}
	return false
}

// stableID derives a 16-digit numeric id from the business id.
func stableID(businessID string) string {
	h := fnv.New64a()
	h.Write([]byte(businessID))
	return strconv.FormatUint(1_000_000_000_000_000+h.Sum64()%9_000_000_000_000_000, 10)
}
