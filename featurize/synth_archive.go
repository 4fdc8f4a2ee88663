package featurize

import (
	"archive/tar"
	"bufio"
	"bytes"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
)

// SynthesizeArchive writes Synthesize's images (classes x perClass JPEGs,
// the same for the same seed) into dir packed as a layout's archives, and
// returns the Options fields that read them (Layout, Archives, Labels,
// Synsets; Input is dir):
//
//   - LayoutILSVRCTrain: ILSVRC2012_img_train.tar holding one tar per
//     class ("class-00.tar" holding "class-00_img-0000.JPEG", ...);
//   - LayoutILSVRCVal: ILSVRC2012_img_val.tar of flat
//     ILSVRC2012_val_NNNNNNNN.JPEG images, LOC_val_solution.csv and
//     LOC_synset_mapping.txt;
//   - LayoutWebDataset: shards train-NNNN.tar of 100 samples (key.jpg,
//     key.cls).
func SynthesizeArchive(dir, layout string, classes, perClass int, seed uint64) (Options, error) {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return Options{}, err
	}
	tmp, err := os.MkdirTemp(dir, ".synthesize-")
	if err != nil {
		return Options{}, err
	}
	defer os.RemoveAll(tmp)
	if err := Synthesize(tmp, classes, perClass, seed); err != nil {
		return Options{}, err
	}
	var names []string // class-NN/img-NNNN.jpg
	err = filepath.WalkDir(tmp, func(p string, d os.DirEntry, err error) error {
		if err == nil && !d.IsDir() {
			rel, _ := filepath.Rel(tmp, p)
			names = append(names, filepath.ToSlash(rel))
		}
		return err
	})
	if err != nil {
		return Options{}, err
	}
	slices.Sort(names)
	read := func(name string) ([]byte, error) { return os.ReadFile(filepath.Join(tmp, filepath.FromSlash(name))) }
	o := Options{Input: dir, Layout: layout}
	switch layout {
	case LayoutILSVRCTrain:
		var outer []archiveFile
		for c := range classes {
			cls := fmt.Sprintf("class-%02d", c)
			var inner []archiveFile
			for _, n := range names {
				if strings.HasPrefix(n, cls+"/") {
					b, err := read(n)
					if err != nil {
						return o, err
					}
					inner = append(inner, archiveFile{cls + "_" + strings.TrimSuffix(strings.TrimPrefix(n, cls+"/"), ".jpg") + ".JPEG", b})
				}
			}
			tb, err := tarOf(inner)
			if err != nil {
				return o, err
			}
			outer = append(outer, archiveFile{cls + ".tar", tb})
		}
		o.Archives = []string{"ILSVRC2012_img_train.tar"}
		return o, writeTar(filepath.Join(dir, o.Archives[0]), outer)
	case LayoutILSVRCVal:
		var files []archiveFile
		var sol, mapping bytes.Buffer
		sol.WriteString("ImageId,PredictionString\n")
		for i, n := range names {
			b, err := read(n)
			if err != nil {
				return o, err
			}
			stem := fmt.Sprintf("ILSVRC2012_val_%08d", i+1)
			files = append(files, archiveFile{stem + ".JPEG", b})
			cls, _, _ := strings.Cut(n, "/")
			fmt.Fprintf(&sol, "%s,%s 0 0 10 10\n", stem, cls)
		}
		for c := range classes {
			fmt.Fprintf(&mapping, "class-%02d synthetic texture %d\n", c, c)
		}
		o.Archives, o.Labels, o.Synsets = []string{"ILSVRC2012_img_val.tar"}, "LOC_val_solution.csv", "LOC_synset_mapping.txt"
		if err := os.WriteFile(filepath.Join(dir, o.Labels), sol.Bytes(), 0o644); err != nil {
			return o, err
		}
		if err := os.WriteFile(filepath.Join(dir, o.Synsets), mapping.Bytes(), 0o644); err != nil {
			return o, err
		}
		return o, writeTar(filepath.Join(dir, o.Archives[0]), files)
	case LayoutWebDataset:
		for lo := 0; lo < len(names); lo += 100 {
			var files []archiveFile
			for i := lo; i < min(lo+100, len(names)); i++ {
				b, err := read(names[i])
				if err != nil {
					return o, err
				}
				key := fmt.Sprintf("sample%08d", i)
				cls, _, _ := strings.Cut(names[i], "/")
				c, err := strconv.Atoi(strings.TrimPrefix(cls, "class-"))
				if err != nil {
					return o, err
				}
				files = append(files, archiveFile{key + ".jpg", b}, archiveFile{key + ".cls", []byte(strconv.Itoa(c))})
			}
			name := fmt.Sprintf("train-%04d.tar", lo/100)
			o.Archives = append(o.Archives, name)
			if err := writeTar(filepath.Join(dir, name), files); err != nil {
				return o, err
			}
		}
		return o, nil
	}
	return o, fmt.Errorf("featurize: SynthesizeArchive: layout %q (want %q, %q or %q)", layout, LayoutILSVRCTrain, LayoutILSVRCVal, LayoutWebDataset)
}

// archiveFile is a member to write.
type archiveFile struct {
	name string
	data []byte
}

func tarOf(files []archiveFile) ([]byte, error) {
	var b bytes.Buffer
	if err := writeTarTo(&b, files); err != nil {
		return nil, err
	}
	return b.Bytes(), nil
}

func writeTar(file string, files []archiveFile) error {
	f, err := os.Create(file)
	if err != nil {
		return err
	}
	w := bufio.NewWriter(f)
	if err := writeTarTo(w, files); err != nil {
		f.Close()
		return err
	}
	if err := w.Flush(); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

func writeTarTo(w interface{ Write([]byte) (int, error) }, files []archiveFile) error {
	tw := tar.NewWriter(w)
	for _, f := range files {
		if err := tw.WriteHeader(&tar.Header{Name: f.name, Mode: 0o644, Size: int64(len(f.data)), Typeflag: tar.TypeReg}); err != nil {
			return err
		}
		if _, err := tw.Write(f.data); err != nil {
			return err
		}
	}
	return tw.Close()
}
