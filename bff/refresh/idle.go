package refresh

import (
	"context"
	"time"

	"github.com/tetherauth/tether/bff/vault"
)

// The idle timeout ends a session nobody has used for Config.IdleTimeout.
// Use is recorded coarsely, so that handing out a token stays one vault
// read: a record's last use is the latest of its login, its last refresh
// and its LastUsed, and LastUsed is rewritten, in the background and only
// if the record has not changed meanwhile (vault.Vault.Touch), when a
// token is handed out more than touchEvery after it. A session therefore
// ends after between IdleTimeout and IdleTimeout + touchEvery unused,
// never sooner.

// maxTouchEvery bounds how stale a recorded last use may be.
const maxTouchEvery = time.Hour

// touchEvery is how often at most a session's use is recorded: an eighth
// of the idle timeout, at most an hour.
func (r *Refresher) touchEvery() time.Duration {
	return min(maxTouchEvery, r.cfg.IdleTimeout/8)
}

// lastUse is when rec was last used, as far as the vault knows.
func lastUse(rec *vault.Record) time.Time {
	t := rec.Created
	for _, u := range [...]time.Time{rec.IssuedAt, rec.LastUsed} {
		if u.After(t) {
			t = u
		}
	}
	return t
}

// idle settles the idle timeout for a record just read: it ends the
// session if it has been unused too long (done: out is the answer), and
// otherwise records this use if the recorded one is stale.
func (r *Refresher) idle(ctx context.Context, sid string, rec *vault.Record) (out outcome, done bool) {
	if r.cfg.IdleTimeout <= 0 {
		return outcome{}, false
	}
	now := r.cfg.Now()
	unused := now.Sub(lastUse(rec))
	if unused > r.cfg.IdleTimeout+r.touchEvery() {
		r.obs.Refreshed(OutcomeIdle)
		r.log.Info("the session was unused too long; ending it", "subject", rec.Subject, "unused", unused.Round(time.Second))
		return r.drop(ctx, sid, ReasonExpired), true
	}
	if unused >= r.touchEvery() {
		r.touch(sid, now)
	}
	return outcome{}, false
}

// touch records, in the background, that sid was used at now; one touch
// per session at a time in this process.
func (r *Refresher) touch(sid string, now time.Time) {
	if _, busy := r.touching.LoadOrStore(sid, struct{}{}); busy {
		return
	}
	go func() {
		defer r.touching.Delete(sid)
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		defer cancel()
		if err := r.store.Touch(ctx, sid, now); err != nil {
			r.log.Warn("recording a session's use", "err", err)
		}
	}()
}
