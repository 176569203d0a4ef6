"""Every simulated controller, one module per upstream project."""

from __future__ import annotations

from butler_portal.simulator.base import Controller
from butler_portal.simulator.capi import (
    ClusterController,
    MachineController,
    MachineDeploymentController,
    MachineSetController,
)
from butler_portal.simulator.cdi import DataVolumeController
from butler_portal.simulator.flux import HelmReleaseController, HelmRepositoryController
from butler_portal.simulator.kamaji import (
    KamajiControlPlaneController,
    TenantControlPlaneController,
)
from butler_portal.simulator.kubeovn import SubnetController, VpcController
from butler_portal.simulator.kubevirt import VirtualMachineController
from butler_portal.simulator.metallb import AddressPoolController, LoadBalancerController

ALL_CONTROLLERS: tuple[type[Controller], ...] = (
    VpcController,
    SubnetController,
    LoadBalancerController,
    AddressPoolController,
    TenantControlPlaneController,
    KamajiControlPlaneController,
    ClusterController,
    MachineDeploymentController,
    MachineSetController,
    MachineController,
    DataVolumeController,
    VirtualMachineController,
    HelmRepositoryController,
    HelmReleaseController,
)
