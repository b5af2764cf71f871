// Package posixlocale keeps Fyne from complaining about the C locale.
//
// With LANG=C.UTF-8 (the default of Debian containers, CI machines and
// many servers) Fyne's translations look up the locale "C", which is not a
// language tag, and log "Error parsing user locale C" at start. The C
// locale means "no language preference", that is English: this package
// says so through LANGUAGE, which the lookup reads for such locales and
// gettext ignores under them. Its init must run before Fyne's lang
// package's: it imports only os and strings and its import path sorts
// before the locale library's, so Go's initialisation order (by import
// path among ready packages) runs it first. Import it from main.
package posixlocale

import (
	"os"
	"strings"
)

func init() {
	if os.Getenv("LANGUAGE") != "" {
		return
	}
	for _, name := range []string{"LC_ALL", "LC_MESSAGES", "LANG"} {
		v := os.Getenv(name)
		if v == "" {
			continue
		}
		if IsPOSIX(v) && v != "C" && v != "POSIX" {
			os.Setenv("LANGUAGE", "en")
		}
		return
	}
}

// IsPOSIX reports whether a locale value is the C or POSIX locale, with or
// without a codeset (C.UTF-8).
func IsPOSIX(v string) bool {
	lang, _, _ := strings.Cut(v, ".")
	lang, _, _ = strings.Cut(lang, "@")
	return lang == "C" || lang == "POSIX"
}
