package harness

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/moby/moby/client"
	"github.com/testcontainers/testcontainers-go"
)

// localImagePrefix names the images `make images` builds; they are in no
// registry, so pulling them is never tried.
const localImagePrefix = "shakedown.local/"

// requireImage is a customizer that checks, before testcontainers would
// pull, that the request's image is on the engine. A missing image is
// pulled once (unless it is one of ours, which no registry has); when
// that fails, the error names the image, the engine, and the setting that
// chose the image.
func (d *dockerRuntime) requireImage(ctx context.Context) testcontainers.CustomizeRequestOption {
	return func(req *testcontainers.GenericContainerRequest) error {
		if req.Image == "" || req.ShouldBuildImage() {
			return nil
		}
		return ensureImage(ctx, d.cli.Client, req.Image)
	}
}

func ensureImage(ctx context.Context, cli *client.Client, image string) error {
	_, err := cli.ImageInspect(ctx, image)
	if err == nil {
		return nil
	}
	if !isNotFound(err) {
		return fmt.Errorf("inspect image %s on the engine at %s: %w", image, cli.DaemonHost(), err)
	}
	pullErr := fmt.Errorf("not tried for %s* images, which come from make images", localImagePrefix)
	if !strings.HasPrefix(image, localImagePrefix) {
		pullErr = pullImage(ctx, cli, image)
		if pullErr == nil {
			return nil
		}
	}
	return imageMissingError(image, cli.DaemonHost(), pullErr)
}

func pullImage(ctx context.Context, cli *client.Client, image string) error {
	resp, err := cli.ImagePull(ctx, image, client.ImagePullOptions{})
	if err != nil {
		return err
	}
	defer resp.Close()
	return resp.Wait(ctx)
}

// imageMissingError says that image is not on the engine, and how to fix
// it: build the local images, or point the variable that chose the image
// at one that is present.
func imageMissingError(image, engine string, pullErr error) error {
	var vars []string
	for _, v := range []struct{ name, def string }{
		{EnvPostgresImage, DefaultPostgresImage},
		{EnvRedisImage, DefaultRedisImage},
		{"SHAKEDOWN_TESTSERVER_IMAGE", ""},
	} {
		if cur := os.Getenv(v.name); image == cur || (cur == "" && image == v.def) {
			vars = append(vars, v.name)
		}
	}
	fix := "or choose an image that is present (docker images)"
	if len(vars) > 0 {
		fix = fmt.Sprintf("or set %s to an image that is present (docker images)", strings.Join(vars, " or "))
	}
	return fmt.Errorf("image %s is not present locally (on the engine at %s), and pulling it failed (%v): "+
		"build it with make images (which builds %spostgres:15, %sredis:7 and %stestserver:latest), %s",
		image, engine, pullErr, localImagePrefix, localImagePrefix, localImagePrefix, fix)
}
