package chlocal

import "syscall"

// sysProcAttr kills the server when this process dies, however it dies
// (MergeTree parts are complete files once an insert is acknowledged, so
// SIGKILL loses nothing that was confirmed), and puts it in its own process
// group so a terminal's Ctrl-C reaches only us: we stop it after the
// components still writing to it.
func sysProcAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setpgid: true}
}
