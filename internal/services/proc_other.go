//go:build !linux

package services

import "syscall"

// ChildAttr: outside Linux there is no parent-death signal; t.Cleanup is the
// only teardown.
func ChildAttr() *syscall.SysProcAttr { return nil }
