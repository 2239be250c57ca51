package harness

import (
	"os"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/stretchr/testify/require"
)

// TestProcessPostgresTree checks what is particular to local processes:
// Postgres backends live in sessions of their own, so a crash must kill
// them by walking the process tree, and a pause must freeze them too.
func TestProcessPostgresTree(t *testing.T) {
	e := New(t, WithBackend(Process))
	p := e.Postgres("pg")
	ctx := ctxFor(t, 2*time.Minute)
	pn := p.rt.(*processNode)
	cmd, _ := pn.current()
	require.NotNil(t, cmd)
	if os.Geteuid() == 0 {
		require.NotNil(t, pn.cred, "as root, servers run as an unprivileged user")
		_, err := os.Stat(pn.dir)
		require.NoError(t, err)
	}

	conn, err := pgx.ConnectConfig(ctx, p.ConnConfig())
	require.NoError(t, err)
	defer conn.Close(ctx)
	kids := descendants(cmd.Process.Pid)
	require.NotEmpty(t, kids, "a postmaster has children (one backend for our connection at least)")

	require.NoError(t, p.Pause(ctx))
	for _, k := range kids {
		if _, _, state, err := procStat(k.pid); err == nil && state != 'Z' { // Z: exited meanwhile
			require.Equal(t, byte('T'), state, "child %d is frozen", k.pid)
		}
	}
	require.NoError(t, p.Unpause(ctx))

	require.NoError(t, p.Crash(ctx))
	for _, k := range kids {
		require.False(t, alive(k.pid, k.start), "child %d of the crashed postmaster is gone", k.pid)
	}
	require.NoError(t, p.Start(ctx), "a crashed cluster starts again (crash recovery)")
	require.NoError(t, pgProbe(ctx, p, 5*time.Second))
}
