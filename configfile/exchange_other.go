//go:build !linux

package configfile

// exchange reports that files cannot be swapped atomically here: the
// caller renames instead.
func exchange(a, b string) (bool, error) { return false, nil }
