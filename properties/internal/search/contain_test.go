package search

import (
	"runtime"
	"testing"
)

func TestContained(t *testing.T) {
	ran := false
	if !Contained(func() { ran = true }) || !ran {
		t.Fatal("a function that returns: Contained reported it did not, or did not run it")
	}
	if Contained(runtime.Goexit) {
		t.Fatal("a function that called runtime.Goexit: Contained reported it returned")
	}
}
