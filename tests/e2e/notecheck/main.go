// Command notecheck checks the log's checkpoints and proofs with Go's reference implementation
// of C2SP signed notes and of RFC 6962 Merkle proofs (golang.org/x/mod/sumdb/note and
// golang.org/x/mod/sumdb/tlog), independently of the project's own Python code.
//
// It builds offline in GOPATH mode against Debian's golang-golang-x-mod-dev:
//
//	GO111MODULE=off GOPATH=/usr/share/gocode go build -o notecheck .
//
// Usage:
//
//	notecheck <verifier key> [<verifier key>...] < note
//	    Open the signed note on stdin with note.Open, trusting the given verifier keys.
//	    Prints the note text, then "verified <name>+<hash>" for every verified signature and
//	    "unverified <name>+<hash>" for signatures by unknown keys, then the checkpoint's
//	    "origin", "size" and "root" (hex) parsed from the text (C2SP tlog-checkpoint).
//	    Exits 1 with Go's error message if the note does not verify, 3 if its text is not a
//	    checkpoint.
//
//	notecheck -inclusion <index> <tree size> <leaf hash> <root> [<proof hash>...]
//	    tlog.CheckRecord: the leaf is at index in the tree with that root.
//
//	notecheck -consistency <size1> <size2> <root1> <root2> [<proof hash>...]
//	    tlog.CheckTree: the tree of size2 extends the tree of size1.
//
// Hashes are standard base64. Exit status 2 means bad usage.
//
// tlog.ParseTree is not used: it reads only the old "go.sum database tree" note format,
// whereas a C2SP checkpoint starts with its origin line.
package main

import (
	"bytes"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"

	"golang.org/x/mod/sumdb/note"
	"golang.org/x/mod/sumdb/tlog"
)

func fail(status int, format string, args ...interface{}) {
	fmt.Fprintf(os.Stderr, "notecheck: "+format+"\n", args...)
	os.Exit(status)
}

func usage() {
	fail(2, "usage: notecheck <verifier key>... < note\n"+
		"       notecheck -inclusion <index> <tree size> <leaf hash> <root> [<proof hash>...]\n"+
		"       notecheck -consistency <size1> <size2> <root1> <root2> [<proof hash>...]")
}

func parseSize(s string) int64 {
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil || n < 0 {
		fail(2, "bad tree size or index %q", s)
	}
	return n
}

func parseHash(s string) tlog.Hash {
	h, err := tlog.ParseHash(s)
	if err != nil {
		fail(2, "bad hash %q: %v", s, err)
	}
	return h
}

func parseHashes(args []string) []tlog.Hash {
	hashes := make([]tlog.Hash, 0, len(args))
	for _, s := range args {
		hashes = append(hashes, parseHash(s))
	}
	return hashes
}

// parseCheckpoint reads the C2SP tlog-checkpoint body: origin, size, base64 root, extensions.
func parseCheckpoint(text string) (origin string, size int64, root []byte, err error) {
	lines := strings.Split(text, "\n")
	if len(lines) < 4 || lines[len(lines)-1] != "" {
		return "", 0, nil, fmt.Errorf("expected origin, size and root hash lines")
	}
	origin = lines[0]
	if origin == "" {
		return "", 0, nil, fmt.Errorf("empty origin line")
	}
	size, err = strconv.ParseInt(lines[1], 10, 64)
	if err != nil || size < 0 || lines[1] != strconv.FormatInt(size, 10) {
		return "", 0, nil, fmt.Errorf("tree size %q is not a decimal number", lines[1])
	}
	root, err = base64.StdEncoding.DecodeString(lines[2])
	if err != nil || len(root) != tlog.HashSize {
		return "", 0, nil, fmt.Errorf("root hash %q is not base64 of %d bytes", lines[2], tlog.HashSize)
	}
	return origin, size, root, nil
}

func openNote(keys []string) {
	verifiers := make([]note.Verifier, 0, len(keys))
	for _, key := range keys {
		v, err := note.NewVerifier(key)
		if err != nil {
			fail(2, "bad verifier key %q: %v", key, err)
		}
		verifiers = append(verifiers, v)
	}
	msg, err := io.ReadAll(os.Stdin)
	if err != nil {
		fail(2, "reading the note: %v", err)
	}
	n, err := note.Open(msg, note.VerifierList(verifiers...))
	if err != nil {
		fail(1, "%v", err)
	}
	var out bytes.Buffer
	out.WriteString(n.Text)
	out.WriteString("\n")
	for _, sig := range n.Sigs {
		fmt.Fprintf(&out, "verified %s+%08x\n", sig.Name, sig.Hash)
	}
	for _, sig := range n.UnverifiedSigs {
		fmt.Fprintf(&out, "unverified %s+%08x\n", sig.Name, sig.Hash)
	}
	os.Stdout.Write(out.Bytes())
	origin, size, root, err := parseCheckpoint(n.Text)
	if err != nil {
		fail(3, "the note verifies but is not a checkpoint: %v", err)
	}
	fmt.Printf("origin %s\nsize %d\nroot %s\n", origin, size, hex.EncodeToString(root))
}

func main() {
	args := os.Args[1:]
	if len(args) == 0 {
		usage()
	}
	switch args[0] {
	case "-inclusion":
		if len(args) < 5 {
			usage()
		}
		index, size := parseSize(args[1]), parseSize(args[2])
		leaf, root := parseHash(args[3]), parseHash(args[4])
		if index >= size {
			fail(1, "index %d is not in the tree of size %d", index, size)
		}
		if err := tlog.CheckRecord(parseHashes(args[5:]), size, root, index, leaf); err != nil {
			fail(1, "%v", err)
		}
		fmt.Printf("inclusion of %d in %d verified\n", index, size)
	case "-consistency":
		if len(args) < 5 {
			usage()
		}
		size1, size2 := parseSize(args[1]), parseSize(args[2])
		root1, root2 := parseHash(args[3]), parseHash(args[4])
		if size1 < 1 || size1 > size2 {
			fail(1, "no consistency proof from size %d to size %d", size1, size2)
		}
		if err := tlog.CheckTree(parseHashes(args[5:]), size2, root2, size1, root1); err != nil {
			fail(1, "%v", err)
		}
		fmt.Printf("consistency of %d with %d verified\n", size1, size2)
	default:
		if strings.HasPrefix(args[0], "-") {
			usage()
		}
		openNote(args)
	}
}
