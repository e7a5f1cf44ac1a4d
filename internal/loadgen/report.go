package loadgen

import (
	"fmt"
	"io"
	"runtime"
	"slices"
	"time"
)

// PrintResult writes one line about r.
func PrintResult(w io.Writer, r *Result) {
	fmt.Fprintf(w, "%-22s go   conns %d  rps %9.0f  p50 %s  p90 %s  p99 %s  max %s  codes %s  errors %d",
		r.Name, r.Conns, r.Throughput(), ms(r.Latency.Quantile(.5)), ms(r.Latency.Quantile(.9)),
		ms(r.Latency.Quantile(.99)), ms(r.Latency.Max()), formatCodes(r.Codes), r.Errors)
	if r.Rate > 0 {
		fmt.Fprintf(w, "  missed %d  service_p99 %s", r.Missed, ms(r.Service.Quantile(.99)))
	}
	fmt.Fprintln(w)
	if len(r.Procs) > 0 {
		fmt.Fprint(w, "  cpu/request:")
		for i, p := range r.Procs {
			if r.CPU[i] >= 0 {
				fmt.Fprintf(w, " %s %.1fµs", p.Name, float64(r.CPU[i])/float64(time.Microsecond))
			}
		}
		fmt.Fprintf(w, "  (busy %.0f%% of %d CPUs; others %.0f%%)\n", 100*r.Busy, runtime.NumCPU(), 100*r.Others)
	}
}

// Median returns the median of xs (the mean of the middle two for an even
// count), 0 for none.
func Median(xs []float64) float64 {
	if len(xs) == 0 {
		return 0
	}
	s := slices.Clone(xs)
	slices.Sort(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func safeDiv(a, b float64) float64 {
	if b == 0 {
		return 0
	}
	return a / b
}

func us(d time.Duration) float64 { return float64(d) / float64(time.Microsecond) }

func ms(d time.Duration) string { return fmt.Sprintf("%.2fms", float64(d)/float64(time.Millisecond)) }

func formatFloats(xs []float64) string {
	s := ""
	for i, x := range xs {
		if i > 0 {
			s += ","
		}
		s += fmt.Sprintf("%.3f", x)
	}
	return s
}

func formatCodes(codes map[int]uint64) string {
	keys := make([]int, 0, len(codes))
	for k := range codes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	s := ""
	for i, k := range keys {
		if i > 0 {
			s += ","
		}
		s += fmt.Sprintf("%d:%d", k, codes[k])
	}
	return s
}
