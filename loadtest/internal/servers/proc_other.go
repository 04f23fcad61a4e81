//go:build !linux

package servers

import "syscall"

// sysProcAttr has no parent-death signal outside Linux: Group.Close kills
// the servers.
func sysProcAttr() *syscall.SysProcAttr { return nil }
