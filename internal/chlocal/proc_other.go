//go:build !linux

package chlocal

import "syscall"

// sysProcAttr has no parent-death signal outside Linux: the caller must
// Stop the server.
func sysProcAttr() *syscall.SysProcAttr { return nil }
