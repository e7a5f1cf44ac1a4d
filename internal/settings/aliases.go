package settings

import "strings"

// RenameFlags returns args with old flag names replaced by their new ones
// (renames maps old to new, without dashes), in every spelling the flag
// package takes: -old, --old, -old=v, --old=v. It stops at "--". Tools
// renamed a flag (-nats became -nats-url everywhere) and keep the old
// spelling working this way without showing it in their help, so that
// scripts written for the old one do not break.
func RenameFlags(args []string, renames map[string]string) []string {
	out := make([]string, len(args))
	copy(out, args)
	for i, a := range out {
		if a == "--" {
			break
		}
		dashes := len(a) - len(strings.TrimLeft(a, "-"))
		if dashes == 0 || dashes > 2 {
			continue
		}
		name, value, hasValue := strings.Cut(a[dashes:], "=")
		if n, ok := renames[name]; ok {
			out[i] = a[:dashes] + n
			if hasValue {
				out[i] += "=" + value
			}
		}
	}
	return out
}
