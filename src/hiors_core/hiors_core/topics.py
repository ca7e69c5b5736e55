"""Topic and service names of the graph, relative so the whole stack can be namespaced. One place for each."""

# Robot driver / simulated twin.
JOINT_STATES = "joint_states"  # sensor_msgs/JointState, measured joints + grippers (0..1 opening)
EE_POSE = "ee_pose/{arm}"  # geometry_msgs/PoseStamped, measured end-effector pose of one arm
CAMERA = "camera/{name}/image_raw"  # sensor_msgs/Image rgb8
CMD_JOINT = "command/joint"  # sensor_msgs/JointState, absolute joint (and gripper) position targets
CMD_EE_POSE = "command/ee_pose/{arm}"  # geometry_msgs/PoseStamped, absolute end-effector target of one arm
CMD_GRIPPER = "command/gripper"  # sensor_msgs/JointState, gripper opening targets (0..1) by gripper name
RESET = "reset"  # hiors_msgs/srv/ResetSim
RESYNC = "resync"  # std_msgs/Header: the robot was moved by something other than the arbiter (a scene reset, a homing routine) at header.stamp: hold where it is now
SIM_TASK_STATE = "sim/task_state"  # std_msgs/String JSON: privileged task state (object poses, success) for the simulated operator and oracle

# Policy side.
OBSERVATION = "observation"  # hiors_msgs/Observation
ACTION_CHUNK = "action_chunk"  # hiors_msgs/ActionChunk

# Teleop / arbiter / recorder.
TELEOP_EE_DELTA = "teleop/ee_delta/{arm}"  # geometry_msgs/PoseStamped, relative EE motion since the clutch engaged
TELEOP_JOINT = "teleop/joint"  # sensor_msgs/JointState, leader-arm absolute joint targets
TELEOP_JOY = "teleop/joy"  # sensor_msgs/Joy, buttons (clutch, trigger, episode start/success/failure)
ESTOP = "estop"  # std_msgs/Bool, true = stop now
CONTROL_STATE = "control_state"  # hiors_msgs/ControlState (latched)
EXECUTED = "executed"  # hiors_msgs/ExecutedCommand, every command sent to the robot
EPISODE_STATUS = "episode_status"  # std_msgs/String (latched): id of the episode being recorded, "" when none
EPISODE_LABEL = "episode_label"  # hiors_msgs/EpisodeLabel
START_EPISODE = "start_episode"  # hiors_msgs/srv/StartEpisode
END_EPISODE = "end_episode"  # hiors_msgs/srv/EndEpisode
LABEL_EPISODE = "label_episode"  # hiors_msgs/srv/LabelEpisode
MARKERS = "monitor/markers"  # visualization_msgs/MarkerArray

# Learner side.
EPISODE = "episode"  # hiors_msgs/Episode, recorder -> episode_filter
EPISODE_ACCEPTED = "episode_accepted"  # hiors_msgs/Episode, episode_filter -> learner
EPISODE_VERDICT = "episode_verdict"  # hiors_msgs/EpisodeVerdict, also the recorder's acknowledgement
POLICY_UPDATE = "policy_update"  # hiors_msgs/PolicyUpdate (latched)
POLICY_WEIGHTS = "policy_weights"  # hiors_msgs/PolicyWeights chunks
LEARNER_STATUS = "learner_status"  # hiors_msgs/LearnerStatus (latched)
DIAGNOSTICS = "/diagnostics"  # diagnostic_msgs/DiagnosticArray
