//go:build !(linux || freebsd || openbsd || netbsd)

package main

// noDisplay says why no window can open: Windows and macOS always have
// their desktop.
func noDisplay() string { return "" }
