package quickstart

import (
	"context"
	"os"
	"testing"

	"github.com/redis/go-redis/v9"
)

type quietRedis struct{}

func (quietRedis) Printf(context.Context, string, ...any) {}

func TestMain(m *testing.M) {
	// go-redis logs every failed dial of its pool through a global logger;
	// under a schedule of faults that is thousands of lines the history
	// already records as failed ops.
	redis.SetLogger(quietRedis{})
	os.Exit(m.Run())
}
