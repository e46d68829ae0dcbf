package main

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/redis/go-redis/v9"
)

// clusterNode is a one-node Redis Cluster (-cluster): every slot on one
// master, enough for hitship's client in redis.mode cluster, whose keys are
// all in the slot of the prefix's hash tag anyway.
type clusterNode struct {
	addr string
	cmd  *exec.Cmd
	done chan error
	dir  string
	rdb  *redis.Client
}

func startClusterNode(ctx context.Context, dir string) (*clusterNode, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	port := ln.Addr().(*net.TCPAddr).Port
	ln.Close()
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	n := &clusterNode{addr: net.JoinHostPort("127.0.0.1", strconv.Itoa(port)), dir: dir, done: make(chan error, 1)}
	n.cmd = exec.Command("redis-server", "--port", strconv.Itoa(port), "--bind", "127.0.0.1", "--dir", dir,
		"--cluster-enabled", "yes", "--cluster-config-file", filepath.Join(dir, "nodes.conf"), "--save", "", "--appendonly", "no")
	if err := n.cmd.Start(); err != nil {
		return nil, err
	}
	go func() { n.done <- n.cmd.Wait() }()
	n.rdb = redis.NewClient(&redis.Options{Addr: n.addr})
	deadline := time.Now().Add(10 * time.Second)
	for n.rdb.Ping(ctx).Err() != nil {
		if time.Now().After(deadline) {
			n.Close()
			return nil, errors.New("the cluster node does not answer")
		}
		time.Sleep(50 * time.Millisecond)
	}
	if err := n.rdb.Do(ctx, "cluster", "addslotsrange", 0, 16383).Err(); err != nil {
		n.Close()
		return nil, fmt.Errorf("cluster addslotsrange: %w", err)
	}
	for {
		s, err := n.rdb.ClusterInfo(ctx).Result()
		if err == nil && strings.Contains(s, "cluster_state:ok") {
			return n, nil
		}
		if time.Now().After(deadline) {
			n.Close()
			return nil, fmt.Errorf("the cluster is not ok: %v %s", err, s)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// Close stops the node.
func (n *clusterNode) Close() {
	n.rdb.Close()
	_ = n.cmd.Process.Kill()
	<-n.done
}
