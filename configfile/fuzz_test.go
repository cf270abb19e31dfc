package configfile

import (
	"errors"
	"strconv"
	"testing"
)

// FuzzParse checks that Parse never panics, that its errors are well
// formed, and that every file it accepts renders back byte for byte and
// survives the canonical writer: Parse(Format(f)) is Equal to f.
func FuzzParse(f *testing.F) {
	for _, s := range roundTrips {
		f.Add([]byte(s))
	}
	f.Fuzz(func(t *testing.T, data []byte) {
		file, err := Parse("fuzz", data)
		if err != nil {
			var list ErrorList
			if !errors.As(err, &list) || len(list) == 0 {
				t.Fatalf("error %T %v is not a non-empty ErrorList", err, err)
			}
			if len(list) > DefaultLimits.MaxErrors+1 {
				t.Fatalf("%d errors", len(list))
			}
			for i, e := range list {
				if e.File != "fuzz" || e.Line < 1 || e.Msg == "" {
					t.Fatalf("malformed error %+v", e)
				}
				if i > 0 && e.Line < list[i-1].Line {
					t.Fatalf("errors out of line order: %v", err)
				}
				_ = e.Error()
			}
			if file != nil {
				t.Fatal("File with an error")
			}
			return
		}
		if got := file.Bytes(); string(got) != string(data) {
			t.Fatalf("Bytes() = %q, want the source %q", got, data)
		}
		out := Format(file)
		g, err := Parse("fuzz", out)
		if err != nil {
			t.Fatalf("Format output does not parse: %v\n%q", err, out)
		}
		if d := file.Diff(g); d != "" {
			t.Fatalf("Parse(Format(f)) differs: %s", d)
		}
		if out2 := Format(g); string(out2) != string(out) {
			t.Fatalf("Format not idempotent:\n%q\n%q", out, out2)
		}
		if d := file.Clone().Diff(file); d != "" {
			t.Fatalf("Clone differs: %s", d)
		}
	})
}

// FuzzEdit applies a sequence of edits (chosen by ops) to a file that
// parses and checks that Bytes() parses back to the edited File.
func FuzzEdit(f *testing.F) {
	f.Add([]byte(editSrc), []byte{0, 1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11})
	f.Add([]byte("group g\r\ndevice d g enabled"), []byte{2, 0, 3, 1, 4, 2, 9, 5})
	f.Fuzz(func(t *testing.T, data, ops []byte) {
		file, err := Parse("fuzz", data)
		if err != nil {
			return
		}
		if len(ops) > 64 {
			ops = ops[:64]
		}
		// copies taken along the way (Clone, or Snapshot sharing the
		// routes) must keep what they said whatever is edited after
		type kept struct {
			f     *File
			bytes string
		}
		var copies []kept
		for i := 0; i+1 < len(ops); i += 2 {
			op, arg := ops[i], int(ops[i+1])
			dev := ""
			if n := len(file.Devices); n > 0 {
				dev = file.Devices[arg%n].Name
			}
			name := []string{"n" + strconv.Itoa(i), "n " + strconv.Itoa(i), "it's " + strconv.Itoa(i), `"q` + strconv.Itoa(i) + `"`}[arg%4]
			switch op % 10 {
			case 0:
				if d, ok := file.Device(dev); ok {
					file.SetEnrolled(dev, !d.Enrolled)
				}
			case 1:
				if d, ok := file.Device(dev); ok {
					file.SetEnabled(dev, !d.Enabled)
				}
			case 2:
				if n := len(file.Groups); n > 0 {
					file.AddDevice(name, file.Groups[arg%n].Name, arg&1 == 0, arg&2 == 0)
				}
			case 3:
				file.RemoveDevice(dev)
			case 4:
				file.SetCrypto(name)
			case 5:
				file.AddLicense(name)
			case 6:
				k := arg % numFlags
				file.SetFlag(flagNames[k], !*file.flagPtr(k))
			case 7:
				file.ClearEnrolled()
			case 8:
				copies = append(copies, kept{file, string(file.Bytes())})
				if arg&1 == 0 {
					file = file.Clone()
				} else {
					file = file.Snapshot()
				}
			case 9:
				file.SetEnrolled(dev, true)
			}
		}
		for _, c := range copies {
			if got := string(c.f.Bytes()); got != c.bytes {
				t.Fatalf("a copy changed after edits of its successor:\nwas %q\nnow %q", c.bytes, got)
			}
		}
		out := file.Bytes()
		g, err := Parse("fuzz", out)
		if err != nil {
			t.Fatalf("edited file does not parse: %v\n%q", err, out)
		}
		if d := file.Diff(g); d != "" {
			t.Fatalf("edited file means something else: %s\n%q", d, out)
		}
		h, err := Parse("fuzz", Format(file))
		if err != nil {
			t.Fatalf("Format of the edited file does not parse: %v", err)
		}
		if d := file.Diff(h); d != "" {
			t.Fatalf("Format of the edited file differs: %s", d)
		}
	})
}
