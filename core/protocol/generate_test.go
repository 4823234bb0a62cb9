package protocol

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// TestGeneratedCodeIsFresh regenerates every msgp output into a temporary
// directory and compares it with the committed *_gen.go files, so editing a
// message without running `go generate ./core/protocol/` fails the tests.
func TestGeneratedCodeIsFresh(t *testing.T) {
	if testing.Short() {
		t.Skip("runs the msgp generator")
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		t.Skip("go is not on PATH")
	}
	sources, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	checked := 0
	for _, src := range sources {
		if strings.HasSuffix(src, "_test.go") || strings.HasSuffix(src, "_gen.go") {
			continue
		}
		args, ok := msgpDirective(t, src)
		if !ok {
			continue
		}
		checked++
		t.Run(src, func(t *testing.T) {
			tmp := t.TempDir()
			base := strings.TrimSuffix(src, ".go")
			out := filepath.Join(tmp, base+"_gen.go")
			cmd := exec.Command(goBin, append(append([]string{"tool", "msgp"}, args...), "-file", src, "-o", out)...)
			cmd.Env = append(os.Environ(), "GOFILE="+src, "GOPACKAGE=protocol")
			if outp, err := cmd.CombinedOutput(); err != nil {
				t.Fatalf("go tool msgp: %v\n%s", err, outp)
			}
			for _, gen := range []string{base + "_gen.go", base + "_gen_test.go"} {
				want, errWant := os.ReadFile(filepath.Join(tmp, gen))
				got, errGot := os.ReadFile(gen)
				switch {
				case os.IsNotExist(errWant) && os.IsNotExist(errGot):
				case errWant != nil:
					t.Errorf("%s is in the tree but the generator no longer writes it", gen)
				case errGot != nil:
					t.Errorf("%s is missing: run go generate ./core/protocol/", gen)
				case !bytes.Equal(got, want):
					t.Errorf("%s is stale: run go generate ./core/protocol/", gen)
				}
			}
		})
	}
	if checked == 0 {
		t.Fatal("no //go:generate go tool msgp directive found")
	}
}

// msgpDirective returns the extra arguments of src's msgp go:generate line.
func msgpDirective(t *testing.T, src string) ([]string, bool) {
	f, err := os.Open(src)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		fields := strings.Fields(sc.Text())
		if len(fields) >= 3 && fields[0] == "//go:generate" && fields[1] == "go" && fields[2] == "tool" &&
			len(fields) >= 4 && fields[3] == "msgp" {
			var args []string
			for i := 4; i < len(fields); i++ {
				switch {
				case fields[i] == "-file" || fields[i] == "-o":
					i++ // replaced below
				case strings.HasPrefix(fields[i], "-file=") || strings.HasPrefix(fields[i], "-o="):
				default:
					args = append(args, fields[i])
				}
			}
			return args, true
		}
	}
	return nil, false
}
