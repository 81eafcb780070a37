package bff

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"net/http"
	"strings"

	"github.com/tetherauth/tether/bff/admin"
	"github.com/tetherauth/tether/bff/refresh"
)

// AdminHandler serves the admin API (see package admin) for operators:
// list a user's sessions, end them all. Every request must carry
// Authorization: Bearer token (compared in constant time), else 401.
// Serve it on a listener of its own, on loopback or an internal network
// (the tether command: TETHER_ADMIN_ADDR), never on the app's: it can end
// anyone's sessions. token must be at least admin.MinTokenLen bytes;
// a shorter one makes every request 401.
func (s *Handler) AdminHandler(token string) http.Handler {
	want := sha256.Sum256([]byte(token))
	usable := len(token) >= admin.MinTokenLen
	mux := http.NewServeMux()
	mux.HandleFunc("GET "+admin.PathSessions, s.adminList)
	mux.HandleFunc("DELETE "+admin.PathSessions, s.adminEnd)
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		auth := r.Header.Get("Authorization")
		scheme, got, _ := strings.Cut(auth, " ")
		sum := sha256.Sum256([]byte(got))
		if !usable || !strings.EqualFold(scheme, "Bearer") || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="tether-admin"`)
			adminError(w, http.StatusUnauthorized, "unauthorized", "send Authorization: Bearer <TETHER_ADMIN_TOKEN>")
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// adminSubject reads the one subject query parameter.
func adminSubject(w http.ResponseWriter, r *http.Request) (string, bool) {
	v := r.URL.Query()["subject"]
	if len(v) != 1 || v[0] == "" || len(v[0]) > 1024 {
		adminError(w, http.StatusBadRequest, "invalid_request", "name one subject: ?subject=<the user's sub>")
		return "", false
	}
	return v[0], true
}

// adminList answers GET /admin/sessions?subject=: the user's live
// sessions, by hashed id, with their times; never a token.
func (s *Handler) adminList(w http.ResponseWriter, r *http.Request) {
	subject, ok := adminSubject(w, r)
	if !ok {
		return
	}
	ctx := r.Context()
	ids, err := s.vault.SubjectSessions(ctx, subject)
	if err != nil {
		s.log.Error("admin: listing sessions", "err", err)
		adminError(w, http.StatusServiceUnavailable, "storage_unavailable", "the session store could not be reached")
		return
	}
	recs, err := s.vault.GetHashed(ctx, ids)
	if err != nil {
		s.log.Error("admin: reading sessions", "err", err)
		adminError(w, http.StatusServiceUnavailable, "storage_unavailable", "the session store could not be reached")
		return
	}
	out := admin.Sessions{Subject: subject, Sessions: make([]admin.Session, 0, len(recs))}
	now := s.cfg.Now()
	for _, r := range recs { // those that ended or expired since they were listed are left out
		out.Sessions = append(out.Sessions, admin.Session{
			ID: r.ID, Name: r.Record.Name, Created: unix(r.Record.Created), LastUsed: unix(r.Record.LastUsed),
			ExpiresAt: now.Add(r.TTL).Unix(), AccessExpiresAt: unix(r.Record.Expiry),
		})
	}
	adminJSON(w, out)
}

// adminEnd answers DELETE /admin/sessions?subject=: every session of the
// user ends (reason revoked: an operator took the access away) and each
// grant is revoked at the provider, where it can be.
func (s *Handler) adminEnd(w http.ResponseWriter, r *http.Request) {
	subject, ok := adminSubject(w, r)
	if !ok {
		return
	}
	ended, err := s.refresher.EndSubject(r.Context(), subject, refresh.ReasonRevoked, true)
	s.metrics.revocations.Add(float64(ended.Revoked))
	if err != nil {
		s.log.Error("admin: ending sessions", "subject", subject, "ended", ended.Ended, "err", err)
		adminError(w, http.StatusServiceUnavailable, "storage_unavailable", "the session store could not be reached; some sessions may have ended")
		return
	}
	s.log.Info("admin: ended the sessions of a user", "subject", subject, "ended", ended.Ended, "revoked", ended.Revoked, "revoke_failed", ended.RevokeFailed)
	adminJSON(w, admin.Ended{Subject: subject, Ended: ended.Ended, Revoked: ended.Revoked, RevokeFailed: ended.RevokeFailed})
}

func adminJSON(w http.ResponseWriter, v any) {
	w.Header().Set("Content-Type", "application/json")
	json.NewEncoder(w).Encode(v)
}

func adminError(w http.ResponseWriter, status int, code, msg string) {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	json.NewEncoder(w).Encode(admin.Error{Error: code, Message: msg})
}
