//go:build linux

package services

import "syscall"

// ChildAttr asks the kernel to SIGKILL a service when the test binary dies.
// t.Cleanup does not run when go test's -timeout panics the binary or when it
// is killed, and an orphaned broker would keep its port and its temp dir.
//
// Pdeathsig fires when the OS thread that started the child exits, not the
// process; the Go runtime only retires threads whose goroutine exits while
// locked to it, which nothing in a test does around StartX, so this is safe.
func ChildAttr() *syscall.SysProcAttr {
	return &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
