package main

import (
	"fmt"
	"os"

	"github.com/genstudio/genstudio/project"
	"github.com/genstudio/genstudio/training"
)

func main() {
	ck, err := training.LoadCheckpoint(os.Args[1])
	if err != nil {
		panic(err)
	}
	d, err := project.LoadMNIST()
	if err != nil {
		panic(err)
	}
	if err := training.ExportTorchJob(os.Args[2], ck.Model, d.Subset(256), training.TorchJobOptions{Steps: 10, Seed: 1}); err != nil {
		panic(err)
	}
	fmt.Println("ok")
}
