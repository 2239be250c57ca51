package toxics_test

import (
	"fmt"
	"time"

	"github.com/shakedown/shakedown/toxics"
)

func ExampleUnmarshal() {
	f, err := toxics.Unmarshal([]byte(`{"kind":"latency","delay":"200ms","jitter":"20ms","direction":"downstream"}`))
	if err != nil {
		panic(err)
	}
	fmt.Println(f)

	_, err = toxics.Unmarshal([]byte(`{"kind":"slicer","average_size":0}`))
	fmt.Println(err)
	// Output:
	// latency(200ms±20ms downstream)
	// toxics: slicer.average_size = 0: must be at least 1 byte
}

func ExampleMarshal() {
	data, err := toxics.Marshal(toxics.Timeout{After: 1500 * time.Millisecond, Direction: toxics.Upstream})
	if err != nil {
		panic(err)
	}
	fmt.Println(string(data))
	// Output:
	// {"kind":"timeout","after":"1.5s","direction":"upstream"}
}
