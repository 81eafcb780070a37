package wire

import (
	"reflect"
	"strings"
)

// JSONNames lists the JSON member names of a struct value's fields, in
// field order, as their tags give them. Tests on both sides use it to check
// that what they read and write matches this contract.
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
