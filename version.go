package main

import (
	"fmt"
	"runtime/debug"

	"github.com/genstudio/genstudio/training"
)

// versionLine is "Gen Studio 0.1.0 (commit abc1234)": the version of
// FyneApp.toml (training.AppVersion, held to it by a test) and the commit
// the binary was built from, with "+changes" for a modified tree.
func versionLine() string {
	return fmt.Sprintf("%s %s (%s)", training.AppName, training.AppVersion, buildCommit())
}

// commit is set by the Makefile (-ldflags -X main.commit=…).
var commit string

// buildCommit is the commit the Makefile stamped, or the VCS revision Go
// recorded at build time.
func buildCommit() string {
	if commit != "" {
		return "commit " + commit
	}
	info, ok := debug.ReadBuildInfo()
	if !ok {
		return "commit unknown"
	}
	rev, dirty := "", false
	for _, s := range info.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "commit unknown"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "+changes"
	}
	return "commit " + rev
}
