package embedstore

import (
	"strconv"
	"testing"
)

// BenchmarkCommandPath compares HSET/HGET with SET/GET as the server runs
// them (under the lock, journal record appended, reply encoded), without
// the network or the fsync wait every acknowledged write shares:
//
//	go test -run '^$' -bench CommandPath ./internal/embedstore/
func BenchmarkCommandPath(b *testing.B) {
	s, err := Open(Options{Dir: b.TempDir()})
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { s.Close() })
	const n = 10000
	keys := make([][]byte, n)
	for i := range keys {
		keys[i] = []byte("{registry}:biz:" + strconv.Itoa(100000000+i))
	}
	val := []byte(`{"channel":"whatsapp","dataset_id":"1234567890","access_token":"sealed-value-of-about-two-hundred-bytes"}`)
	var out []byte
	for _, bc := range []struct {
		name string
		args func(i int) [][]byte
	}{
		{"SET", func(i int) [][]byte { return [][]byte{[]byte("SET"), keys[i%n], val} }},
		{"GET", func(i int) [][]byte { return [][]byte{[]byte("GET"), keys[i%n]} }},
		{"HSET", func(i int) [][]byte {
			return [][]byte{[]byte("HSET"), append(keys[i%n][:len(keys[i%n]):len(keys[i%n])], 'h'), []byte("data"), val}
		}},
		{"HGET", func(i int) [][]byte {
			return [][]byte{[]byte("HGET"), append(keys[i%n][:len(keys[i%n]):len(keys[i%n])], 'h'), []byte("data")}
		}},
	} {
		b.Run(bc.name, func(b *testing.B) {
			for i := 0; b.Loop(); i++ {
				out = s.exec(out[:0], bc.args(i))
			}
		})
	}
}
