package servers

import "syscall"

// sysProcAttr makes the kernel kill a server when the process that started
// it dies, so that an interrupted run leaves nothing behind. (Pdeathsig
// follows the thread that started the child; Go keeps its threads alive,
// and Group.Close is the rule, this the safety net.)
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
