package config

import (
	"fmt"
	"reflect"
	"strconv"
	"strings"
)

// Field describes one key of a section, read from the struct tags.
type Field struct {
	Key        string   // TOML key
	Long       string   // long flag name, without "--"
	Shorts     []string // short flag names, without "-"
	Aliases    []string // other TOML keys (and long flags) for the same field
	Help       string
	Arg        string   // value placeholder for help; empty for booleans
	Choices    []string // allowed values, if restricted
	Positional bool
	Kind       reflect.Kind // String, Int, Int64, Bool or Slice (of strings)
	index      []int
}

// Fields lists the keys of a section struct in declaration order, embedded
// structs (such as Logging) flattened in place.
func Fields(s Section) []Field {
	return fieldsOf(reflect.TypeOf(s).Elem(), nil)
}

func fieldsOf(t reflect.Type, prefix []int) []Field {
	var out []Field
	for i := 0; i < t.NumField(); i++ {
		sf := t.Field(i)
		index := append(append([]int(nil), prefix...), i)
		if sf.Anonymous {
			out = append(out, fieldsOf(sf.Type, index)...)
			continue
		}
		key := sf.Tag.Get("toml")
		if key == "" {
			continue
		}
		out = append(out, Field{
			Key:        key,
			Long:       strings.ReplaceAll(key, "_", "-"),
			Shorts:     splitTag(sf.Tag.Get("short")),
			Aliases:    splitTag(sf.Tag.Get("alias")),
			Help:       sf.Tag.Get("help"),
			Arg:        sf.Tag.Get("arg"),
			Choices:    splitTag(sf.Tag.Get("choices")),
			Positional: sf.Tag.Get("pos") == "true",
			Kind:       sf.Type.Kind(),
			index:      index,
		})
	}
	return out
}

func splitTag(s string) []string {
	if s == "" {
		return nil
	}
	return strings.Split(s, ",")
}

// LookupField finds the field of s named by a TOML key or one of its aliases.
func LookupField(s Section, key string) (Field, bool) {
	for _, f := range Fields(s) {
		if f.Key == key {
			return f, true
		}
		for _, a := range f.Aliases {
			if a == key {
				return f, true
			}
		}
	}
	return Field{}, false
}

func (f Field) value(s Section) reflect.Value {
	return reflect.ValueOf(s).Elem().FieldByIndex(f.index)
}

// Get returns the field's current value (string, int, int64, bool or []string).
func (f Field) Get(s Section) any { return f.value(s).Interface() }

// SetString sets the field from command-line text. Lists receive the values
// already split by the caller, so SetList is used for them.
func (f Field) SetString(s Section, text string) error {
	v := f.value(s)
	switch f.Kind {
	case reflect.String:
		v.SetString(text)
	case reflect.Int, reflect.Int64:
		n, err := strconv.ParseInt(strings.TrimSpace(text), 10, 64)
		if err != nil {
			return fmt.Errorf("%q is not an integer", text)
		}
		if v.OverflowInt(n) {
			return fmt.Errorf("%d is out of range", n)
		}
		v.SetInt(n)
	case reflect.Bool:
		b, err := parseBool(text)
		if err != nil {
			return err
		}
		v.SetBool(b)
	case reflect.Slice:
		v.Set(reflect.ValueOf([]string{text}))
	}
	return nil
}

// SetList sets a list field.
func (f Field) SetList(s Section, items []string) {
	f.value(s).Set(reflect.ValueOf(append([]string{}, items...)))
}

// parseBool accepts the spellings a Python user writes: True/False, true/false,
// yes/no, on/off, 1/0.
func parseBool(text string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(text)) {
	case "true", "yes", "on", "1":
		return true, nil
	case "false", "no", "off", "0":
		return false, nil
	}
	return false, fmt.Errorf("%q is not a boolean (use true or false)", text)
}

// IsBoolText reports whether text is a boolean spelling accepted by SetString.
func IsBoolText(text string) bool {
	_, err := parseBool(text)
	return err == nil
}

// setTOML sets the field from a decoded TOML value, checking its type.
func (f Field) setTOML(s Section, raw any) error {
	v := f.value(s)
	switch f.Kind {
	case reflect.String:
		switch x := raw.(type) {
		case string:
			v.SetString(x)
		case int64:
			if f.Key != "max_memory" {
				return typeError("a string", raw)
			}
			v.SetString(strconv.FormatInt(x, 10))
		default:
			return typeError("a string", raw)
		}
	case reflect.Int, reflect.Int64:
		n, ok := raw.(int64)
		if !ok {
			return typeError("an integer", raw)
		}
		if v.OverflowInt(n) {
			return fmt.Errorf("%d is out of range", n)
		}
		v.SetInt(n)
	case reflect.Bool:
		b, ok := raw.(bool)
		if !ok {
			return typeError("a boolean (true or false)", raw)
		}
		v.SetBool(b)
	case reflect.Slice:
		switch x := raw.(type) {
		case string: // upstream wraps a lone string into a list
			v.Set(reflect.ValueOf([]string{x}))
		case []any:
			items := make([]string, 0, len(x))
			for _, it := range x {
				str, ok := it.(string)
				if !ok {
					return typeError("a list of strings", raw)
				}
				items = append(items, str)
			}
			v.Set(reflect.ValueOf(items))
		default:
			return typeError("a list of strings", raw)
		}
	}
	return nil
}

func typeError(want string, got any) error {
	return fmt.Errorf("expected %s, got %s %s", want, tomlTypeName(got), shortValue(got))
}

func tomlTypeName(v any) string {
	switch v.(type) {
	case string:
		return "string"
	case int64:
		return "integer"
	case float64:
		return "float"
	case bool:
		return "boolean"
	case []any:
		return "array"
	case map[string]any:
		return "table"
	}
	return fmt.Sprintf("%T", v)
}

func shortValue(v any) string {
	s := fmt.Sprintf("%#v", v)
	if _, ok := v.(string); ok {
		s = strconv.Quote(v.(string))
	}
	if len(s) > 40 {
		s = s[:37] + "..."
	}
	return s
}
