// Package notebooks holds LOBA's notebooks; its tests execute every one of them in a real Jupyter
// with the GoNB kernel (what ./install.sh installs), registered for this checkout in a temporary
// Jupyter folder, on the CPU, with LOBA_TEST_SIZE set.
package notebooks

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/loba-dev/loba/kernelsetup/kerneltest"
)

type notebook struct {
	Cells []struct {
		CellType       string   `json:"cell_type"`
		Source         []string `json:"source"`
		ExecutionCount *int     `json:"execution_count"`
		Outputs        []struct {
			OutputType string                     `json:"output_type"`
			Name       string                     `json:"name"`
			Text       []string                   `json:"text"`
			Data       map[string]json.RawMessage `json:"data"`
			EName      string                     `json:"ename"`
			EValue     string                     `json:"evalue"`
		} `json:"outputs"`
	} `json:"cells"`
	Metadata struct {
		Kernelspec struct {
			Name string `json:"name"`
		} `json:"kernelspec"`
	} `json:"metadata"`
}

func readNotebook(t *testing.T, path string) *notebook {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var nb notebook
	if err := json.Unmarshal(data, &nb); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &nb
}

func notebookFiles(t *testing.T) []string {
	files, err := filepath.Glob("*.ipynb")
	if err != nil || len(files) == 0 {
		t.Fatalf("no notebooks in %s: %v", must(os.Getwd()), err)
	}
	return files
}

func must[T any](v T, _ error) T { return v }

// TestCommittedNotebooks: committed with outputs cleared, the gonb kernel, an Open-in-Colab badge,
// and the Colab bootstrap and LOBA_ROOT link as their first code cells.
func TestCommittedNotebooks(t *testing.T) {
	for _, f := range notebookFiles(t) {
		t.Run(f, func(t *testing.T) {
			nb := readNotebook(t, f)
			if nb.Metadata.Kernelspec.Name != "gonb" {
				t.Errorf("kernelspec %q, want gonb", nb.Metadata.Kernelspec.Name)
			}
			all := ""
			var code []string
			for i, c := range nb.Cells {
				src := strings.Join(c.Source, "")
				all += src + "\n"
				if c.CellType == "code" {
					code = append(code, src)
					if len(c.Outputs) > 0 || c.ExecutionCount != nil {
						t.Errorf("cell %d is committed with outputs (clear them)", i)
					}
				}
			}
			if !strings.Contains(all, "https://colab.research.google.com/github/loba-dev/loba/blob/main/notebooks/"+f) {
				t.Errorf("no Open-in-Colab badge for %s", f)
			}
			if len(code) < 2 || !strings.Contains(code[0], "colab/bootstrap.sh") || !strings.Contains(code[1], "$LOBA_ROOT") {
				t.Errorf("the first code cells must be the Colab bootstrap and the LOBA_ROOT link")
			}
		})
	}
}

// sandbox is the environment the notebooks run in: a temporary HOME and Jupyter folders with the
// gonb kernel registered there for this checkout as install.sh registers it (kerneltest.Jupyter), so
// the result does not hang on the user's own kernel (which another checkout may have registered)
// and nothing is written to the user's folders; LOBA_TEST_SIZE and the pure-Go backend on top.
func sandbox(t *testing.T) []string {
	t.Helper()
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	e := kerneltest.Jupyter(t, root)
	return append(e.Vars, "LOBA_TEST_SIZE=1", "GOMLX_BACKEND=go", "GOMLX_NO_AUTO_INSTALL=1", "LOBA_ECHARTS_INLINE=1")
}

// run executes one notebook in dir with nbconvert and the gonb kernel under env and returns the
// executed one.
func run(t *testing.T, env []string, dir, name string) *notebook {
	t.Helper()
	jupyter, err := exec.LookPath("jupyter")
	if err != nil {
		t.Fatal("jupyter is not on PATH: run ./install.sh (it installs Jupyter and the gonb kernel)")
	}
	cmd := exec.Command(jupyter, "nbconvert", "--to", "notebook", "--execute",
		"--ExecutePreprocessor.kernel_name=gonb", "--ExecutePreprocessor.timeout=1800",
		"--output", "executed-"+name, name)
	cmd.Dir = dir
	cmd.Env = env
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("executing %s: %v\n%s", name, err, tail(string(out), 6000))
	}
	nb := readNotebook(t, filepath.Join(dir, "executed-"+name))
	for i, c := range nb.Cells {
		for _, o := range c.Outputs {
			if o.OutputType == "error" {
				t.Errorf("cell %d: %s: %s", i, o.EName, o.EValue)
			}
			if h, ok := o.Data["text/html"]; ok && strings.Contains(string(h), "gonb-err") {
				t.Errorf("cell %d shows a GoNB error: %s", i, tail(string(h), 2000))
			}
		}
	}
	return nb
}

// chartDrawn reports whether some loss-chart <div> holds an <svg> with <path> elements (what the
// ECharts SVG renderer leaves once it has drawn).
func chartDrawn(dom string) bool {
	for _, loc := range regexp.MustCompile(`<div id="loba_loss_[0-9a-f]+"`).FindAllStringIndex(dom, -1) {
		rest := dom[loc[1]:]
		end := strings.Index(rest, "</svg>")
		svg := strings.Index(rest, "<svg")
		if svg >= 0 && end > svg && svg < 4000 && strings.Count(rest[svg:end], "<path") >= 2 {
			return true
		}
	}
	return false
}

func tail(s string, n int) string {
	if len(s) > n {
		return "…" + s[len(s)-n:]
	}
	return s
}

// TestNotebooksExecute runs every notebook in a copy of this folder (run folders land there), in a
// sandbox (see sandbox), with the user's own kernel made one of another checkout of LOBA, which must
// neither matter nor change.
func TestNotebooksExecute(t *testing.T) {
	defer kerneltest.Unchanged(t, kerneltest.RegisteredElsewhere(t))()
	env := sandbox(t)
	dir := t.TempDir()
	for _, f := range notebookFiles(t) {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, f), data, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range notebookFiles(t) {
		t.Run(f, func(t *testing.T) {
			nb := run(t, env, dir, f)
			if f == "01-quickstart.ipynb" {
				checkQuickstart(t, env, dir, nb)
			}
		})
	}
}

// checkQuickstart: the executed quickstart holds the sample grid as image/png, the loss chart as
// HTML with the loss series, and its run folder the LoRA; rendered to HTML in headless Chromium,
// ECharts draws the chart (an <svg> inside the chart's <div>).
func checkQuickstart(t *testing.T, env []string, dir string, nb *notebook) {
	var pngs, charts int
	for _, c := range nb.Cells {
		for _, o := range c.Outputs {
			if _, ok := o.Data["image/png"]; ok {
				pngs++
			}
			if h, ok := o.Data["text/html"]; ok && strings.Contains(string(h), `\"name\":\"loss\"`) && strings.Contains(string(h), "echarts") {
				charts++
			}
		}
	}
	if pngs == 0 {
		t.Error("no image/png output (the sample grid)")
	}
	if charts == 0 {
		t.Error("no HTML chart output with the loss series")
	}
	for _, f := range []string{"lora.safetensors", "loss.csv", "preset.yaml", "grid.png", "eval.json"} {
		if _, err := os.Stat(filepath.Join(dir, "runs", "size", f)); err != nil {
			t.Errorf("run folder: %v", err)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, "output", "size.safetensors")); err != nil {
		t.Errorf("saved adapter: %v", err)
	}

	// nbconvert to HTML, then let Chromium run the scripts.
	cmd := exec.Command("jupyter", "nbconvert", "--to", "html", "--output", "quickstart.html", "executed-01-quickstart.ipynb")
	cmd.Dir, cmd.Env = dir, env
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("nbconvert --to html: %v\n%s", err, tail(string(out), 3000))
	}
	chromium := ""
	for _, c := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(c); err == nil {
			chromium = p
			break
		}
	}
	if chromium == "" {
		t.Fatal("no headless Chromium on PATH (./install.sh installs the Debian package chromium)")
	}
	page := "file://" + filepath.Join(dir, "quickstart.html")
	args := []string{"--headless", "--no-sandbox", "--disable-gpu", "--hide-scrollbars", "--virtual-time-budget=10000"}
	browse := func(a ...string) *exec.Cmd { // under the sandbox's HOME: its profile is written there
		cmd := exec.Command(chromium, a...)
		cmd.Env = env
		return cmd
	}
	dom, err := browse(append(args, "--dump-dom", page)...).Output()
	if err != nil {
		t.Fatalf("chromium --dump-dom: %v", err)
	}
	if !chartDrawn(string(dom)) {
		t.Errorf("ECharts did not draw the loss chart in Chromium (no <svg> with paths inside the chart <div>)")
	}
	shots := os.Getenv("LOBA_SCREENSHOT_DIR")
	if shots == "" {
		shots = dir
	}
	shot := filepath.Join(shots, "quickstart.png")
	if out, err := browse(append(args, "--window-size=1000,4600", "--screenshot="+shot, page)...).CombinedOutput(); err != nil {
		t.Errorf("chromium --screenshot: %v\n%s", err, out)
	}
	t.Logf("screenshot of the executed quickstart: %s", shot)
}

func TestChartDrawn(t *testing.T) {
	drawn := `<div id="loba_loss_ab12" style="x"><div><svg width="720"><path d="M0 0"/><path d="M1 1"/></svg></div></div>`
	if !chartDrawn(drawn) {
		t.Error("a drawn chart is not recognised")
	}
	for _, dom := range []string{`<div id="loba_loss_ab12" style="x"></div><script>…</script>`, `<div id="other"><svg><path/><path/></svg></div>`} {
		if chartDrawn(dom) {
			t.Errorf("an undrawn chart is taken for drawn: %s", dom)
		}
	}
}
