package servertest

import (
	"errors"
	"net"
	"os/exec"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var errNotYet = errors.New("not yet")

func TestFreePort(t *testing.T) {
	port, err := FreePort()
	require.NoError(t, err)
	l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", port))
	require.NoError(t, err, "the port is free")
	require.NoError(t, l.Close())
}

func TestLaunchReportsAnExitWithItsOutput(t *testing.T) {
	_, err := Launch("sh on nothing", exec.Command("/bin/sh", "-c", "echo address in use >&2; exit 1"), 5*time.Second,
		func(int) error { return errNotYet })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "sh on nothing exited")
	assert.Contains(t, err.Error(), "address in use")
}

func TestLaunchGivesUpAtTheTimeout(t *testing.T) {
	_, err := Launch("sleeper", exec.Command("/bin/sleep", "60"), 10*time.Millisecond, func(int) error { return errNotYet })
	require.Error(t, err)
	assert.Contains(t, err.Error(), "sleeper did not answer within 10ms: not yet")
}

func TestFreezeAndKill(t *testing.T) {
	var seen int
	p, err := Launch("sleeper", exec.Command("/bin/sleep", "60"), 5*time.Second, func(pid int) error { seen = pid; return nil })
	require.NoError(t, err)
	assert.Equal(t, p.Pid(), seen, "ready is asked about this process")
	require.NoError(t, p.Freeze(), "the kernel reports the process stopped")
	require.NoError(t, p.Signal(syscall.SIGCONT))
	assert.False(t, p.Exited())
	p.Kill()
	assert.True(t, p.Exited(), "Kill returns once the process has exited")
	p.Kill() // killing an exited process does nothing
}

func TestTail(t *testing.T) {
	assert.Equal(t, "last", Tail("  last\n"))
	long := strings.Repeat("x", 3000) + "end"
	got := Tail(long)
	assert.True(t, strings.HasPrefix(got, "…") && strings.HasSuffix(got, "end"))
	assert.Len(t, got, len("…")+2000)
}
