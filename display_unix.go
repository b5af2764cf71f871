//go:build linux || freebsd || openbsd || netbsd

package main

import "os"

// noDisplay says why no window can open ("" when one can): on X11 and
// Wayland desktops DISPLAY or WAYLAND_DISPLAY is set.
func noDisplay() string {
	if os.Getenv("DISPLAY") == "" && os.Getenv("WAYLAND_DISPLAY") == "" {
		return "there is no display (neither DISPLAY nor WAYLAND_DISPLAY is set)"
	}
	return ""
}
