// Package wiretest helps tests on both sides of the contract check that
// what they read and write matches shared/wire. It uses reflect, which the
// WebAssembly client must not link, so it lives apart from package wire
// and only tests import it.
package wiretest

import (
	"reflect"
	"strings"
)

// JSONNames lists the JSON member names of a struct value's fields, in
// field order, as their tags give them.
func JSONNames(v any) []string {
	t := reflect.TypeOf(v)
	var names []string
	for i := 0; i < t.NumField(); i++ {
		tag := t.Field(i).Tag.Get("json")
		name, _, _ := strings.Cut(tag, ",")
		if name != "" && name != "-" {
			names = append(names, name)
		}
	}
	return names
}
