package training

import "io"

// InjectWriter puts wrap under every atomic write until restore is called:
// tests use it to fail writes as a full disk does.
func InjectWriter(wrap func(path string, w io.Writer) io.Writer) (restore func()) {
	old := injectWriter
	injectWriter = wrap
	return func() { injectWriter = old }
}
