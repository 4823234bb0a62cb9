package config

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"unicode"
)

// Preload is a parsed --preload spec "pkg.mod:func(arg, key=value)". The
// worker passes the original text to the Python processor, which evaluates
// it again with Python's own literal parser; parsing here rejects bad specs
// before any process starts.
type Preload struct {
	Module   string
	Function string
	Call     bool // false for a bare "pkg.mod:func": called with no arguments
	Args     []any
	Kwargs   []KeywordArg // in the order written
}

// KeywordArg is one key=value argument of a preload call.
type KeywordArg struct {
	Name  string
	Value any
}

// Tuple and Set mark Python tuple and set literals; lists are []any and
// dicts are []DictItem so that any literal key type survives.
type (
	Tuple    []any
	Set      []any
	DictItem struct{ Key, Value any }
)

// ParsePreload parses and checks a preload spec: module path, function name
// and literal arguments (strings, numbers, booleans, None, lists, tuples,
// dicts and sets).
func ParsePreload(spec string) (*Preload, error) {
	module, expr, ok := strings.Cut(spec, ":")
	if !ok {
		return nil, fmt.Errorf("%q must look like \"pkg.module:function(args)\"", spec)
	}
	module = strings.TrimSpace(module)
	if !isDottedName(module) {
		return nil, fmt.Errorf("%q: %q is not a module path such as pkg.module", spec, module)
	}
	p := &literalParser{src: strings.TrimRightFunc(expr, unicode.IsSpace)}
	name := p.identifier()
	if name == "" {
		return nil, fmt.Errorf("%q: expected a function name after ':'", spec)
	}
	out := &Preload{Module: module, Function: name}
	if p.done() {
		return out, nil
	}
	if !p.eat('(') {
		return nil, fmt.Errorf("%q: function reference must be a simple name followed by optional (arguments)", spec)
	}
	out.Call = true
	if err := p.callArgs(out); err != nil {
		return nil, fmt.Errorf("%q: %w", spec, err)
	}
	if !p.done() {
		return nil, fmt.Errorf("%q: unexpected %q after the argument list", spec, p.src[p.pos:])
	}
	return out, nil
}

func isDottedName(s string) bool {
	if s == "" {
		return false
	}
	for _, part := range strings.Split(s, ".") {
		if !isIdentifier(part) {
			return false
		}
	}
	return true
}

func isIdentifier(s string) bool {
	for i, r := range s {
		if !(r == '_' || unicode.IsLetter(r) || (i > 0 && unicode.IsDigit(r))) {
			return false
		}
	}
	return s != ""
}

// literalParser is a small recursive-descent parser for Python literals.
type literalParser struct {
	src string
	pos int
}

func (p *literalParser) skipSpace() {
	for p.pos < len(p.src) && strings.ContainsRune(" \t\r\n", rune(p.src[p.pos])) {
		p.pos++
	}
}

func (p *literalParser) done() bool { p.skipSpace(); return p.pos >= len(p.src) }

func (p *literalParser) peek() byte {
	p.skipSpace()
	if p.pos < len(p.src) {
		return p.src[p.pos]
	}
	return 0
}

func (p *literalParser) eat(c byte) bool {
	if p.peek() == c {
		p.pos++
		return true
	}
	return false
}

func (p *literalParser) identifier() string {
	p.skipSpace()
	start := p.pos
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		if c == '_' || c >= 0x80 || ('a' <= c && c <= 'z') || ('A' <= c && c <= 'Z') || (p.pos > start && '0' <= c && c <= '9') {
			p.pos++
			continue
		}
		break
	}
	return p.src[start:p.pos]
}

func (p *literalParser) callArgs(out *Preload) error {
	for !p.eat(')') {
		if p.done() {
			return errors.New("missing ')'")
		}
		save := p.pos
		if name := p.identifier(); name != "" && p.eat('=') {
			v, err := p.value()
			if err != nil {
				return err
			}
			out.Kwargs = append(out.Kwargs, KeywordArg{Name: name, Value: v})
		} else {
			p.pos = save
			if len(out.Kwargs) > 0 {
				return errors.New("positional argument follows keyword argument")
			}
			v, err := p.value()
			if err != nil {
				return err
			}
			out.Args = append(out.Args, v)
		}
		if !p.eat(',') && p.peek() != ')' {
			if p.done() {
				return errors.New("missing ')'")
			}
			return fmt.Errorf("expected ',' or ')' at %q", p.src[p.pos:])
		}
	}
	return nil
}

func (p *literalParser) value() (any, error) {
	switch c := p.peek(); {
	case c == '\'' || c == '"':
		return p.str()
	case c == '[':
		p.pos++
		items, err := p.items(']')
		return items, err
	case c == '(':
		p.pos++
		items, err := p.items(')')
		return Tuple(items), err
	case c == '{':
		p.pos++
		return p.dictOrSet()
	case c == '-' || c == '+' || c == '.' || ('0' <= c && c <= '9'):
		return p.number()
	case c == 0:
		return nil, errors.New("expected a value")
	}
	save := p.pos
	switch name := p.identifier(); name {
	case "True":
		return true, nil
	case "False":
		return false, nil
	case "None":
		return nil, nil
	case "set":
		if p.eat('(') && p.eat(')') {
			return Set{}, nil
		}
	case "b", "r", "rb", "br", "u", "B", "R", "U":
		if c := p.peek(); c == '\'' || c == '"' {
			return p.str()
		}
	}
	p.pos = save
	return nil, fmt.Errorf("arguments must be literal values (strings, numbers, True, False, None, lists, tuples, dicts, sets); %q is not", p.src[p.pos:])
}

func (p *literalParser) items(closer byte) ([]any, error) {
	items := []any{}
	for !p.eat(closer) {
		v, err := p.value()
		if err != nil {
			return nil, err
		}
		items = append(items, v)
		if !p.eat(',') && p.peek() != closer {
			return nil, fmt.Errorf("expected ',' or '%c'", closer)
		}
	}
	return items, nil
}

func (p *literalParser) dictOrSet() (any, error) {
	if p.eat('}') {
		return []DictItem{}, nil
	}
	var dict []DictItem
	var set Set
	for {
		k, err := p.value()
		if err != nil {
			return nil, err
		}
		if p.eat(':') && set == nil {
			v, err := p.value()
			if err != nil {
				return nil, err
			}
			dict = append(dict, DictItem{k, v})
		} else if dict == nil {
			set = append(set, k)
		} else {
			return nil, errors.New("expected ':' in dict literal")
		}
		if p.eat('}') {
			break
		}
		if !p.eat(',') {
			return nil, errors.New("expected ',' or '}'")
		}
		if p.eat('}') {
			break
		}
	}
	if dict != nil {
		return dict, nil
	}
	return set, nil
}

func (p *literalParser) number() (any, error) {
	p.skipSpace()
	start := p.pos
	for p.pos < len(p.src) && strings.IndexByte("+-0123456789.eExXabcdefABCDEF_oOjJ", p.src[p.pos]) >= 0 {
		// a sign is only part of the number at the start or after an exponent
		if c := p.src[p.pos]; (c == '-' || c == '+') && p.pos > start && !strings.ContainsRune("eE", rune(p.src[p.pos-1])) {
			break
		}
		p.pos++
	}
	text := p.src[start:p.pos]
	if i, err := strconv.ParseInt(text, 0, 64); err == nil {
		return i, nil
	}
	if f, err := strconv.ParseFloat(strings.ReplaceAll(text, "_", ""), 64); err == nil {
		return f, nil
	}
	if strings.HasSuffix(strings.ToLower(text), "j") {
		if _, err := strconv.ParseComplex(text[:len(text)-1]+"i", 128); err == nil {
			return text, nil // complex numbers are kept as their source text
		}
	}
	return nil, fmt.Errorf("%q is not a number", text)
}

func (p *literalParser) str() (string, error) {
	quote := p.src[p.pos]
	p.pos++
	var b strings.Builder
	for p.pos < len(p.src) {
		c := p.src[p.pos]
		p.pos++
		switch {
		case c == quote:
			return b.String(), nil
		case c == '\\' && p.pos < len(p.src):
			e := p.src[p.pos]
			p.pos++
			switch e {
			case 'n':
				b.WriteByte('\n')
			case 't':
				b.WriteByte('\t')
			case 'r':
				b.WriteByte('\r')
			case '0':
				b.WriteByte(0)
			default:
				b.WriteByte(e)
			}
		default:
			b.WriteByte(c)
		}
	}
	return "", errors.New("unterminated string")
}
