package search

// Contained runs f in a goroutine of its own and reports whether f
// returned: false when it ended with runtime.Goexit instead, as
// t.FailNow does (synctest.Test calls it on its parent test when the
// bubble's test failed). A run made beside others, off the test's
// goroutine, is called this way, so that such an exit ends the run and
// not the goroutine that runs one after another.
func Contained(f func()) bool {
	returned := false
	done := make(chan struct{})
	go func() {
		defer close(done)
		f()
		returned = true
	}()
	<-done
	return returned
}
