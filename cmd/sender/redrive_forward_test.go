package main

import "testing"

func TestForwardReason(t *testing.T) {
	for _, tt := range []struct {
		args    []string
		want    bool
		wantErr bool
	}{
		{[]string{"-reason", "forward"}, true, false},
		{[]string{"--reason=forward", "-host", "inbox.example"}, true, false},
		{[]string{"-reason", "rejected,expired"}, false, false},
		{[]string{"-reason", "forward,rejected"}, false, true},
		{[]string{"-dry-run"}, false, false},
	} {
		got, err := forwardReason(tt.args)
		if got != tt.want || (err != nil) != tt.wantErr {
			t.Errorf("forwardReason(%q) = %v, %v; want %v, error %v", tt.args, got, err, tt.want, tt.wantErr)
		}
	}
}
