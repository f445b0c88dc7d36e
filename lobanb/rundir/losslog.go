package rundir

import (
	"bufio"
	"errors"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/loba-dev/loba/internal/atomicfile"
)

// lossHeader is the first line of a run's loss.csv.
const lossHeader = "step,loss,lr,seconds"

// LossPoint is one row of a loss.csv.
type LossPoint struct {
	Step    int
	Loss    float64
	LR      float64
	Seconds float64
}

// LossLog appends the steps of a run to DIR/loss.csv, one flushed row per step.
type LossLog struct {
	f *os.File
	w *bufio.Writer
}

// OpenLossLog opens DIR/loss.csv for appending after keeping its header and the rows of steps ≤
// through (a resumed run rewrites the steps after its checkpoint). A new or empty file gets the
// header at once, and a file whose header was lost (a run killed before its first step wrote it, or
// two runs in one folder) gets it back, so that a later cell can always read the log.
func (d Dir) OpenLossLog(through int) (*LossLog, error) {
	if err := TruncateLoss(d.LossLog(), through); err != nil {
		return nil, err
	}
	f, err := os.OpenFile(d.LossLog(), os.O_CREATE|os.O_APPEND|os.O_WRONLY, 0o644)
	if err != nil {
		return nil, err
	}
	l := &LossLog{f: f, w: bufio.NewWriter(f)}
	if st, _ := f.Stat(); st != nil && st.Size() == 0 {
		fmt.Fprintln(l.w, lossHeader)
		if err := l.w.Flush(); err != nil {
			_ = f.Close()
			return nil, err
		}
	}
	return l, nil
}

// Append writes one step's row and flushes it.
func (l *LossLog) Append(step int, loss float32, lr float64, seconds float64) {
	fmt.Fprintf(l.w, "%d,%g,%g,%.3f\n", step, loss, lr, seconds)
	_ = l.w.Flush()
}

// Close flushes and closes the file.
func (l *LossLog) Close() error {
	err := l.w.Flush()
	return errors.Join(err, l.f.Close())
}

// TruncateLoss keeps the header and the rows of steps <= step of a loss.csv whose first column is
// the step. A first line that is not a header (lost: see OpenLossLog) is replaced by the run's header,
// and rows that do not parse are dropped. A missing file is fine.
func TruncateLoss(path string, step int) error {
	data, err := os.ReadFile(path)
	if errors.Is(err, os.ErrNotExist) {
		return nil
	} else if err != nil {
		return err
	}
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	keep := []string{lines[0]}
	if !strings.HasPrefix(lines[0], "step,") {
		keep[0] = lossHeader
		lines = append([]string{""}, lines...) // the lost header's line was a row, or nothing
	}
	if !strings.HasSuffix(string(data), "\n") {
		lines = lines[:len(lines)-1] // a row cut short by a kill
	}
	width := len(strings.Split(keep[0], ","))
	for _, line := range lines[1:] {
		if n, ok := wholeRow(line, width); ok && n <= step {
			keep = append(keep, line)
		}
	}
	return atomicfile.WriteFile(path, []byte(strings.Join(keep, "\n")+"\n"))
}

// wholeRow tells whether line is a complete row of width numeric columns, and returns its step.
func wholeRow(line string, width int) (int, bool) {
	fields := strings.Split(line, ",")
	if len(fields) != width {
		return 0, false
	}
	for _, f := range fields[1:] {
		if _, err := strconv.ParseFloat(f, 64); err != nil {
			return 0, false
		}
	}
	n, err := strconv.Atoi(fields[0])
	return n, err == nil
}

// ReadLoss reads DIR/loss.csv.
func (d Dir) ReadLoss() ([]LossPoint, error) { return ReadLossFile(d.LossLog()) }

// ReadLossFile reads a loss.csv (step,loss,lr,seconds; the header names the columns, so the toy
// base trainer's step,loss,seconds reads too). A row that does not parse is an error naming file
// and line; a last row without its newline is being written (or was cut short by a kill) and is left out.
func ReadLossFile(path string) ([]LossPoint, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	if i := strings.LastIndexByte(string(data), '\n'); i+1 < len(data) {
		data = data[:i+1]
	}
	sc := bufio.NewScanner(strings.NewReader(string(data)))
	var col map[string]int
	var pts []LossPoint
	for line := 1; sc.Scan(); line++ {
		fields := strings.Split(strings.TrimSpace(sc.Text()), ",")
		if line == 1 {
			if col, err = lossColumns(path, sc.Text(), fields); err != nil {
				return nil, err
			}
			continue
		}
		if len(fields) == 1 && fields[0] == "" {
			continue
		}
		p, err := parseLossRow(col, fields, func(format string, args ...any) error {
			return fmt.Errorf("%s line %d: "+format, append([]any{path, line}, args...)...)
		})
		if err != nil {
			return nil, err
		}
		pts = append(pts, p)
	}
	return pts, sc.Err()
}

// lossColumns maps the header's column names to their indices; step and loss are required.
func lossColumns(path, header string, fields []string) (map[string]int, error) {
	col := map[string]int{}
	for i, name := range fields {
		col[name] = i
	}
	for _, need := range []string{"step", "loss"} {
		if _, ok := col[need]; !ok {
			return nil, fmt.Errorf("%s: header %q has no %s column", path, header, need)
		}
	}
	return col, nil
}

// parseLossRow reads one row; a column the header lacks reads as 0.
func parseLossRow(col map[string]int, fields []string, errf func(format string, args ...any) error) (LossPoint, error) {
	var vals [4]float64
	for k, name := range []string{"step", "loss", "lr", "seconds"} {
		i, ok := col[name]
		if !ok {
			continue
		}
		if i >= len(fields) {
			return LossPoint{}, errf("no %s value in %q", name, strings.Join(fields, ","))
		}
		v, err := strconv.ParseFloat(fields[i], 64)
		if err != nil {
			return LossPoint{}, errf("%s %q is not a number", name, fields[i])
		}
		vals[k] = v
	}
	return LossPoint{Step: int(vals[0]), Loss: vals[1], LR: vals[2], Seconds: vals[3]}, nil
}
