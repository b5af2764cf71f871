package main

import (
	"errors"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestCheckWindowArgs: only a project folder and --selftest DIR open the
// window; a typo of a command is an unknown command.
func TestCheckWindowArgs(t *testing.T) {
	dir := t.TempDir()
	file := dir + "/f.txt"
	os.WriteFile(file, nil, 0o644)
	for _, tc := range []struct {
		args []string
		want string // "" = accepted
	}{
		{[]string{dir}, ""},
		{[]string{"--selftest", "/tmp/out"}, ""},
		{[]string{"trian"}, `unknown command "trian"`},
		{[]string{"--frobnicate"}, "unknown flag"},
		{[]string{dir + "/missing"}, "neither a command nor a project folder"},
		{[]string{file}, "not a project folder"},
	} {
		err := checkWindowArgs(tc.args)
		if (tc.want == "") != (err == nil) || (err != nil && !strings.Contains(err.Error(), tc.want)) {
			t.Errorf("%v: %v, want %q", tc.args, err, tc.want)
		}
	}
}

// TestFrontDoor runs the binary: --version, help, a typo and no display.
func TestFrontDoor(t *testing.T) {
	bin := buildBinary(t)
	out, err := exec.Command(bin, "--version").Output()
	if err != nil || !strings.HasPrefix(string(out), "Gen Studio 0.1.0 (commit ") {
		t.Fatalf("--version: %q, %v", out, err)
	}
	help, _ := exec.Command(bin, "help").Output()
	for name := range commands {
		if !strings.Contains(string(help), "genstudio "+name) {
			t.Errorf("help does not list %s", name)
		}
	}
	for _, tc := range []struct {
		args []string
		env  []string
		code int
		want string
	}{
		{[]string{"trian"}, nil, 2, `unknown command "trian"`},
		{nil, []string{"DISPLAY=", "WAYLAND_DISPLAY="}, 1, "there is no display"},
	} {
		cmd := exec.Command(bin, tc.args...)
		cmd.Env = append(os.Environ(), tc.env...)
		out, err := cmd.CombinedOutput()
		var ee *exec.ExitError
		if !errors.As(err, &ee) || ee.ExitCode() != tc.code || !strings.Contains(string(out), tc.want) || strings.Contains(string(out), "panic") {
			t.Errorf("%v: exit %v, output %q; want status %d and %q", tc.args, err, out, tc.code, tc.want)
		}
		if lines := strings.Count(strings.TrimSpace(string(out)), "\n"); lines > 1 {
			t.Errorf("%v: %d lines of output, want a short message:\n%s", tc.args, lines+1, out)
		}
	}
}
