//go:build !linux

package testenv

import "syscall"

// childAttr: outside Linux there is no parent-death signal; t.Cleanup is the
// only teardown.
func childAttr() *syscall.SysProcAttr { return nil }
